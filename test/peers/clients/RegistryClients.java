package registrybridge.clients;

import static registrybridge.clients.Launcher.optional;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;

/**
 * Real registry clients for the integration tests, one per process, from Maven Central jars
 * (test/peers/clients/pom.xml). test/peers/clients.ts compiles this file and starts it:
 *
 *   dubbo   --registry <zookeeper://h:p | nacos://h:p?namespace=ns> --app <name>
 *           [--version v] [--group g] [--host 127.0.0.2] [--dubbo-port n] [--tri-port n]
 *           [--register-mode all|interface|instance] [--weight n] [--delay ms]
 *           [--metadata-center true|false]
 *   nacos   --server h:p [--username u] (password from the environment: RB_CLIENT_NACOS_PASSWORD)
 *           --instance ns/group/service/ip:port[;weight=w][;enabled=false][;ephemeral=false][;k=v]...
 *   curator --connect h:p [--base /services] --name s --address a --port n [--spring] [--id x]
 *
 * It prints "READY" on stdout once registered, then reads commands on stdin: "stop" (graceful:
 * unregister, close, exit 0). End of stdin does the same. SIGKILL leaves the registration to the
 * registry's own session expiry, as with a crashed process.
 */
public final class RegistryClients {
  private static final String WHO = "RegistryClients";

  private RegistryClients() {}

  public static void main(String[] argv) throws Exception {
    if (argv.length == 0) usage("no mode");
    String mode = argv[0];
    Map<String, List<String>> opts = Launcher.options(WHO, argv, Set.of("spring"));
    AutoCloseable client;
    switch (mode) {
      case "dubbo":
        client = dubbo(opts);
        break;
      case "nacos":
        client = nacos(opts);
        break;
      case "curator":
        client = curator(opts);
        break;
      default:
        usage("unknown mode " + mode);
        return;
    }
    Launcher.serve(client);
  }

  private static AutoCloseable dubbo(Map<String, List<String>> o) {
    org.apache.dubbo.config.ApplicationConfig app = new org.apache.dubbo.config.ApplicationConfig(required(o, "app"));
    app.setQosEnable(false);
    app.setRegisterMode(optional(o, "register-mode", "all"));
    org.apache.dubbo.config.RegistryConfig registry = new org.apache.dubbo.config.RegistryConfig(required(o, "registry"));
    // --metadata-center false: the registry is not Dubbo's metadata center (no <root>/mapping,
    // no <root>/metadata), as with a metadata report turned off or kept elsewhere.
    String metadataCenter = optional(o, "metadata-center", null);
    if (metadataCenter != null) registry.setUseAsMetadataCenter(Boolean.parseBoolean(metadataCenter));
    String host = optional(o, "host", "127.0.0.1");
    List<org.apache.dubbo.config.ProtocolConfig> protocols = new ArrayList<>();
    String dubboPort = optional(o, "dubbo-port", null);
    if (dubboPort != null) {
      org.apache.dubbo.config.ProtocolConfig p = new org.apache.dubbo.config.ProtocolConfig("dubbo", Integer.parseInt(dubboPort));
      p.setHost(host);
      protocols.add(p);
    }
    String triPort = optional(o, "tri-port", null);
    if (triPort != null) {
      org.apache.dubbo.config.ProtocolConfig p = new org.apache.dubbo.config.ProtocolConfig("tri", Integer.parseInt(triPort));
      p.setHost(host);
      protocols.add(p);
    }
    if (protocols.isEmpty()) usage("dubbo needs --dubbo-port and/or --tri-port");
    org.apache.dubbo.config.ServiceConfig<registrybridge.demo.GreetService> service = new org.apache.dubbo.config.ServiceConfig<>();
    service.setInterface(registrybridge.demo.GreetService.class);
    service.setRef(new registrybridge.demo.GreetServiceImpl());
    String version = optional(o, "version", null);
    if (version != null) service.setVersion(version);
    String group = optional(o, "group", null);
    if (group != null) service.setGroup(group);
    String weight = optional(o, "weight", null);
    if (weight != null) service.setWeight(Integer.parseInt(weight));
    // --delay ms: Dubbo's service `delay` (the export, interface level included, waits that long).
    String delay = optional(o, "delay", null);
    if (delay != null) service.setDelay(Integer.parseInt(delay));
    service.setProtocols(protocols);
    org.apache.dubbo.config.bootstrap.DubboBootstrap bootstrap = org.apache.dubbo.config.bootstrap.DubboBootstrap.getInstance();
    bootstrap.application(app).registry(registry).protocols(protocols).service(service).start();
    return bootstrap::stop;
  }

  private static AutoCloseable nacos(Map<String, List<String>> o) throws Exception {
    // --instance <namespace>/<group>/<service>/<ip:port>[;weight=w][;enabled=false]...: one
    // NamingService per namespace; per service, ephemeral instances in one batch (several
    // registerInstance calls of one client for one service replace each other) and persistent
    // ones one by one (a service is either ephemeral or persistent).
    String server = required(o, "server");
    Map<String, com.alibaba.nacos.api.naming.NamingService> byNamespace = new LinkedHashMap<>();
    Map<String, List<com.alibaba.nacos.api.naming.pojo.Instance>> byService = new LinkedHashMap<>();
    for (String spec : o.getOrDefault("instance", List.of())) {
      String[] parts = spec.split("/", 4);
      if (parts.length != 4) usage("--instance needs namespace/group/service/ip:port, got " + spec);
      byService.computeIfAbsent(parts[0] + "/" + parts[1] + "/" + parts[2], k -> new ArrayList<>()).add(instanceOf(parts[3]));
    }
    List<Runnable> undo = new ArrayList<>();
    for (Map.Entry<String, List<com.alibaba.nacos.api.naming.pojo.Instance>> e : byService.entrySet()) {
      String[] k = e.getKey().split("/", 3);
      com.alibaba.nacos.api.naming.NamingService naming = byNamespace.get(k[0]);
      if (naming == null) {
        Properties props = new Properties();
        props.setProperty("serverAddr", server);
        props.setProperty("namespace", k[0]);
        if (o.containsKey("username")) {
          String password = System.getenv("RB_CLIENT_NACOS_PASSWORD");
          if (password == null) usage("--username needs the password in RB_CLIENT_NACOS_PASSWORD");
          props.setProperty("username", o.get("username").get(0));
          props.setProperty("password", password);
        }
        naming = com.alibaba.nacos.api.naming.NamingFactory.createNamingService(props);
        awaitUp(naming);
        byNamespace.put(k[0], naming);
      }
      final com.alibaba.nacos.api.naming.NamingService n = naming;
      List<com.alibaba.nacos.api.naming.pojo.Instance> ephemeral = new ArrayList<>();
      for (com.alibaba.nacos.api.naming.pojo.Instance i : e.getValue()) {
        if (i.isEphemeral()) {
          ephemeral.add(i);
        } else {
          n.registerInstance(k[2], k[1], i);
          undo.add(() -> quietly(() -> n.deregisterInstance(k[2], k[1], i)));
        }
      }
      if (!ephemeral.isEmpty()) {
        n.batchRegisterInstance(k[2], k[1], ephemeral);
        undo.add(() -> quietly(() -> n.batchDeregisterInstance(k[2], k[1], ephemeral)));
      }
    }
    System.out.println("nacos-client " + com.alibaba.nacos.common.utils.VersionUtils.version);
    return () -> {
      for (Runnable r : undo) r.run();
      for (com.alibaba.nacos.api.naming.NamingService n : byNamespace.values()) n.shutDown();
    };
  }

  /**
   * The client connects in the background; on a loaded machine it is still STARTING when the
   * first register would fail ("Client not connected"). Waits (up to 60 s) until the server answers UP.
   */
  private static void awaitUp(com.alibaba.nacos.api.naming.NamingService naming) throws InterruptedException {
    long deadline = System.currentTimeMillis() + 60_000;
    while (!"UP".equals(naming.getServerStatus()) && System.currentTimeMillis() < deadline) Thread.sleep(200);
  }

  private interface Action {
    void run() throws Exception;
  }

  private static void quietly(Action a) {
    try {
      a.run();
    } catch (Exception e) {
      System.err.println("RegistryClients: " + e);
    }
  }

  private static com.alibaba.nacos.api.naming.pojo.Instance instanceOf(String spec) {
    String[] parts = spec.split(";");
    String ipPort = parts[0];
    int colon = ipPort.lastIndexOf(':');
    com.alibaba.nacos.api.naming.pojo.Instance i = new com.alibaba.nacos.api.naming.pojo.Instance();
    i.setIp(ipPort.substring(0, colon));
    i.setPort(Integer.parseInt(ipPort.substring(colon + 1)));
    Map<String, String> metadata = new LinkedHashMap<>();
    for (int k = 1; k < parts.length; k++) {
      int eq = parts[k].indexOf('=');
      String key = parts[k].substring(0, eq);
      String value = parts[k].substring(eq + 1);
      switch (key) {
        case "weight":
          i.setWeight(Double.parseDouble(value));
          break;
        case "enabled":
          i.setEnabled(Boolean.parseBoolean(value));
          break;
        case "ephemeral":
          i.setEphemeral(Boolean.parseBoolean(value));
          break;
        case "healthy":
          i.setHealthy(Boolean.parseBoolean(value));
          break;
        case "cluster":
          i.setClusterName(value);
          break;
        default:
          metadata.put(key, value);
      }
    }
    i.setMetadata(metadata);
    return i;
  }

  private static AutoCloseable curator(Map<String, List<String>> o) throws Exception {
    org.apache.curator.framework.CuratorFramework zk = org.apache.curator.framework.CuratorFrameworkFactory.newClient(
        required(o, "connect"), 10_000, 5_000, new org.apache.curator.retry.ExponentialBackoffRetry(200, 5));
    zk.start();
    zk.blockUntilConnected();
    boolean spring = o.containsKey("spring");
    Map<String, String> metadata = new LinkedHashMap<>();
    if (spring) metadata.put("instance_status", "UP");
    org.apache.curator.x.discovery.ServiceInstanceBuilder<Map<String, String>> b =
        org.apache.curator.x.discovery.ServiceInstance.<Map<String, String>>builder()
            .name(required(o, "name"))
            .address(required(o, "address"))
            .port(Integer.parseInt(required(o, "port")))
            .payload(metadata);
    String id = optional(o, "id", null);
    if (id != null) b.id(id);
    org.apache.curator.x.discovery.ServiceInstance<Map<String, String>> instance = b.build();
    // Spring Cloud Zookeeper writes a ZookeeperInstance payload (class org.springframework...);
    // the serializer here writes the payload class it is given, so a Spring-shaped payload is
    // a map under that class name: the JSON has the same fields Spring writes.
    org.apache.curator.x.discovery.details.InstanceSerializer<Map<String, String>> serializer =
        spring ? new SpringShapedSerializer() : new org.apache.curator.x.discovery.details.JsonInstanceSerializer<>(castMap());
    org.apache.curator.x.discovery.ServiceDiscovery<Map<String, String>> discovery =
        org.apache.curator.x.discovery.ServiceDiscoveryBuilder.builder(castMap())
            .client(zk)
            .basePath(optional(o, "base", "/services"))
            .serializer(serializer)
            .thisInstance(instance)
            .build();
    discovery.start();
    return () -> {
      discovery.close();
      zk.close();
    };
  }

  @SuppressWarnings("unchecked")
  private static Class<Map<String, String>> castMap() {
    return (Class<Map<String, String>>) (Class<?>) Map.class;
  }

  /** What Spring Cloud Zookeeper writes: payload {"@class": "...ZookeeperInstance", id, name, metadata}. */
  static final class SpringShapedSerializer
      implements org.apache.curator.x.discovery.details.InstanceSerializer<Map<String, String>> {
    private final com.fasterxml.jackson.databind.ObjectMapper mapper = new com.fasterxml.jackson.databind.ObjectMapper();

    @Override
    public byte[] serialize(org.apache.curator.x.discovery.ServiceInstance<Map<String, String>> i) throws Exception {
      Map<String, Object> payload = new LinkedHashMap<>();
      payload.put("@class", "org.springframework.cloud.zookeeper.discovery.ZookeeperInstance");
      payload.put("id", i.getName());
      payload.put("name", i.getName());
      payload.put("metadata", i.getPayload());
      Map<String, Object> json = new LinkedHashMap<>();
      json.put("name", i.getName());
      json.put("id", i.getId());
      json.put("address", i.getAddress());
      json.put("port", i.getPort());
      json.put("sslPort", i.getSslPort());
      json.put("payload", payload);
      json.put("registrationTimeUTC", i.getRegistrationTimeUTC());
      json.put("serviceType", i.getServiceType().name());
      json.put("uriSpec", Map.of("parts", List.of(
          Map.of("value", "scheme", "variable", true),
          Map.of("value", "://", "variable", false),
          Map.of("value", "address", "variable", true),
          Map.of("value", ":", "variable", false),
          Map.of("value", "port", "variable", true))));
      return mapper.writeValueAsBytes(json);
    }

    @Override
    public org.apache.curator.x.discovery.ServiceInstance<Map<String, String>> deserialize(byte[] bytes) {
      throw new UnsupportedOperationException("registration only");
    }
  }

  private static String required(Map<String, List<String>> o, String key) {
    return Launcher.required(WHO, o, key);
  }

  private static void usage(String why) {
    Launcher.usage(WHO, why);
  }
}
