package registrybridge.demo;

/** The implementation the test providers export: greet(n) is "hello n". */
public final class GreetServiceImpl implements GreetService {
  @Override
  public String greet(String name) {
    return "hello " + name;
  }
}
