package registrybridge.demo;

/** The Dubbo interface the test providers export (a top-level name, as real services have). */
public interface GreetService {
  String greet(String name);
}
