package registrybridge.clients;

import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * An Apache Dubbo 2.7 provider on ZooKeeper for the integration tests, from Maven Central jars
 * (test/peers/clients/dubbo27/pom.xml: Dubbo 2.7 with a ZooKeeper 3.6 client, since the 3.4
 * client Dubbo 2.7 brings fails on JDK 17). test/peers/clients.ts (variant `dubbo27`) compiles
 * this file and starts it:
 *
 *   dubbo --registry zookeeper://h:p[?group=root] --app <name> --dubbo-port n
 *         [--version v] [--group g] [--host 127.0.0.1] [--weight n]
 *
 * It exports registrybridge.demo.GreetService over the dubbo protocol (Dubbo 2.7 registers at
 * interface level only: /<root>/<iface>/providers/<url>), prints "READY" once registered, and
 * on "stop" (or end of stdin) unregisters, closes and exits 0.
 */
public final class Dubbo27Provider {
  private static final String WHO = "Dubbo27Provider";

  private Dubbo27Provider() {}

  public static void main(String[] argv) throws Exception {
    if (argv.length == 0 || !argv[0].equals("dubbo")) Launcher.usage(WHO, "the only mode is dubbo");
    Map<String, List<String>> o = Launcher.options(WHO, argv, Set.of());
    org.apache.dubbo.config.ApplicationConfig app = new org.apache.dubbo.config.ApplicationConfig(Launcher.required(WHO, o, "app"));
    app.setQosEnable(false);
    org.apache.dubbo.config.RegistryConfig registry = new org.apache.dubbo.config.RegistryConfig(Launcher.required(WHO, o, "registry"));
    registry.setClient("curator");
    org.apache.dubbo.config.ProtocolConfig protocol =
        new org.apache.dubbo.config.ProtocolConfig("dubbo", Integer.parseInt(Launcher.required(WHO, o, "dubbo-port")));
    protocol.setHost(Launcher.optional(o, "host", "127.0.0.1"));
    org.apache.dubbo.config.ServiceConfig<registrybridge.demo.GreetService> service =
        new org.apache.dubbo.config.ServiceConfig<>();
    service.setInterface(registrybridge.demo.GreetService.class);
    service.setRef(new registrybridge.demo.GreetServiceImpl());
    String version = Launcher.optional(o, "version", null);
    if (version != null) service.setVersion(version);
    String group = Launcher.optional(o, "group", null);
    if (group != null) service.setGroup(group);
    String weight = Launcher.optional(o, "weight", null);
    if (weight != null) service.setWeight(Integer.parseInt(weight));
    org.apache.dubbo.config.bootstrap.DubboBootstrap bootstrap =
        org.apache.dubbo.config.bootstrap.DubboBootstrap.getInstance();
    bootstrap.application(app).registry(registry).protocol(protocol).service(service).start();
    System.out.println("dubbo " + org.apache.dubbo.common.Version.getVersion());
    Launcher.serve(bootstrap::stop);
  }
}
