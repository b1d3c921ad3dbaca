package registrybridge.clients;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * What the launchers of test/peers/clients share (compiled with each variant's sources, JDK
 * classes only): their `--key value` options, their usage errors (exit 2), and their life on
 * stdin: "READY" once registered, then "stop" (or end of stdin) closes the client, prints
 * "STOPPED" and exits 0.
 */
final class Launcher {
  private Launcher() {}

  /**
   * The options after the mode (argv[0]), `--key value` each; the keys in `flags` take no value
   * ("true"). A repeated key keeps every value, in order.
   */
  static Map<String, List<String>> options(String who, String[] argv, Set<String> flags) {
    Map<String, List<String>> out = new HashMap<>();
    for (int i = 1; i < argv.length; i++) {
      String a = argv[i];
      if (!a.startsWith("--")) usage(who, "unexpected argument " + a);
      String key = a.substring(2);
      if (flags.contains(key)) {
        out.computeIfAbsent(key, k -> new ArrayList<>()).add("true");
        continue;
      }
      if (i + 1 >= argv.length) usage(who, a + " needs a value");
      out.computeIfAbsent(key, k -> new ArrayList<>()).add(argv[++i]);
    }
    return out;
  }

  /** The last value of --key, or `fallback` (null: none) when it is not given. */
  static String optional(Map<String, List<String>> o, String key, String fallback) {
    List<String> v = o.get(key);
    return v == null || v.isEmpty() ? fallback : v.get(v.size() - 1);
  }

  /** The last value of --key; a usage error when it is not given. */
  static String required(String who, Map<String, List<String>> o, String key) {
    String v = optional(o, key, null);
    if (v == null) usage(who, "--" + key + " is required");
    return v;
  }

  /** "READY" on stdout, then {@link #serveUntilStop}'s end: the client closed on "stop". */
  static void serve(AutoCloseable client) throws Exception {
    System.out.println("READY");
    System.out.flush();
    serveUntilStop(client);
  }

  /** Waits for "stop" on stdin (or its end), closes the client, prints "STOPPED", exits 0. */
  static void serveUntilStop(AutoCloseable client) throws Exception {
    awaitStop();
    client.close();
    System.out.println("STOPPED");
    System.out.flush();
    System.exit(0);
  }

  private static void awaitStop() throws IOException {
    BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    String line;
    while ((line = in.readLine()) != null) {
      if (line.trim().equals("stop")) break;
    }
  }

  static void usage(String who, String why) {
    System.err.println(who + ": " + why);
    System.exit(2);
  }
}
