package registrybridge.clients;

/**
 * A minimal Spring Boot web application with Spring Cloud Zookeeper discovery, for the
 * integration tests, from Maven Central jars (test/peers/clients/spring-zk/pom.xml).
 * test/peers/clients.ts (variant `spring-zk`) compiles this file and starts it with Spring's
 * own command-line properties, for example:
 *
 *   --spring.application.name=orders --server.port=18080
 *   --spring.cloud.zookeeper.connect-string=127.0.0.1:2181
 *   --spring.cloud.zookeeper.discovery.root=/services
 *   [--spring.cloud.zookeeper.discovery.prefer-ip-address=true]
 *   [--spring.cloud.zookeeper.discovery.metadata.zone=z1]
 *
 * Spring Cloud Zookeeper registers the application itself (auto-registration, once the web
 * server is up) as a Curator ServiceInstance under <root>/<name>/<id>, an ephemeral znode. This
 * prints "READY" once that registration happened, then on "stop" (or end of stdin) closes the
 * context (which deregisters) and exits 0.
 */
@org.springframework.boot.autoconfigure.SpringBootApplication
@org.springframework.web.bind.annotation.RestController
public class SpringZkApp {
  @org.springframework.web.bind.annotation.GetMapping("/greet")
  public String greet() {
    return "hello";
  }

  @org.springframework.context.event.EventListener
  public void registered(org.springframework.cloud.client.discovery.event.InstanceRegisteredEvent<?> e) {
    System.out.println("READY");
    System.out.flush();
  }

  public static void main(String[] args) throws Exception {
    org.springframework.context.ConfigurableApplicationContext ctx =
        org.springframework.boot.SpringApplication.run(SpringZkApp.class, args);
    Launcher.serveUntilStop(ctx::close);
  }
}
