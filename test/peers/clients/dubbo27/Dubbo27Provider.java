package registrybridge.clients;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;

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
  public static final class GreetServiceImpl implements registrybridge.demo.GreetService {
    @Override
    public String greet(String name) {
      return "hello " + name;
    }
  }

  private Dubbo27Provider() {}

  public static void main(String[] argv) throws Exception {
    if (argv.length == 0 || !argv[0].equals("dubbo")) usage("the only mode is dubbo");
    java.util.Map<String, String> o = new java.util.HashMap<>();
    for (int i = 1; i < argv.length; i++) {
      if (!argv[i].startsWith("--") || i + 1 >= argv.length) usage("expected --key value at " + argv[i]);
      o.put(argv[i].substring(2), argv[++i]);
    }
    org.apache.dubbo.config.ApplicationConfig app = new org.apache.dubbo.config.ApplicationConfig(required(o, "app"));
    app.setQosEnable(false);
    org.apache.dubbo.config.RegistryConfig registry = new org.apache.dubbo.config.RegistryConfig(required(o, "registry"));
    registry.setClient("curator");
    org.apache.dubbo.config.ProtocolConfig protocol =
        new org.apache.dubbo.config.ProtocolConfig("dubbo", Integer.parseInt(required(o, "dubbo-port")));
    protocol.setHost(o.getOrDefault("host", "127.0.0.1"));
    org.apache.dubbo.config.ServiceConfig<registrybridge.demo.GreetService> service =
        new org.apache.dubbo.config.ServiceConfig<>();
    service.setInterface(registrybridge.demo.GreetService.class);
    service.setRef(new GreetServiceImpl());
    if (o.containsKey("version")) service.setVersion(o.get("version"));
    if (o.containsKey("group")) service.setGroup(o.get("group"));
    if (o.containsKey("weight")) service.setWeight(Integer.parseInt(o.get("weight")));
    org.apache.dubbo.config.bootstrap.DubboBootstrap bootstrap =
        org.apache.dubbo.config.bootstrap.DubboBootstrap.getInstance();
    bootstrap.application(app).registry(registry).protocol(protocol).service(service).start();
    System.out.println("dubbo " + org.apache.dubbo.common.Version.getVersion());
    System.out.println("READY");
    System.out.flush();
    BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    String line;
    while ((line = in.readLine()) != null) {
      if (line.trim().equals("stop")) break;
    }
    bootstrap.stop();
    System.out.println("STOPPED");
    System.out.flush();
    System.exit(0);
  }

  private static String required(java.util.Map<String, String> o, String key) {
    String v = o.get(key);
    if (v == null) usage("--" + key + " is required");
    return v;
  }

  private static void usage(String why) {
    System.err.println("Dubbo27Provider: " + why);
    System.exit(2);
  }
}
