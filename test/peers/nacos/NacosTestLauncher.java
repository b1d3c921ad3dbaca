/*
 * Test-only launcher for the real Nacos 3.x server modules (io.github.pig-mesh.nacos republish
 * of alibaba/nacos), started from a Maven-resolved classpath instead of the distribution zip.
 *
 * Compiled by test/peers/nacos.ts with javac into the peer cache. All configuration comes in as
 * system properties (-Dnacos.home, -Dnacos.standalone=true, ports, auth, ...) and as
 * --spring.config.additional-location; this class only reproduces what the distribution's
 * bootstrap does: a core context without web server, then the server web context (client API on
 * nacos.server.main.port under /nacos, gRPC on +1000) and, in "merged" mode, the console context
 * (nacos.console.port) - both children of the core context.
 */
package registrybridge.peers;

import com.alibaba.nacos.NacosServerBasicApplication;
import com.alibaba.nacos.NacosServerWebApplication;
import com.alibaba.nacos.console.NacosConsole;
import com.alibaba.nacos.core.listener.startup.NacosStartUp;
import com.alibaba.nacos.core.listener.startup.NacosStartUpManager;
import com.alibaba.nacos.sys.env.DeploymentType;
import com.alibaba.nacos.sys.env.EnvUtil;
import org.springframework.boot.WebApplicationType;
import org.springframework.boot.builder.SpringApplicationBuilder;
import org.springframework.context.ConfigurableApplicationContext;

public final class NacosTestLauncher {

    private NacosTestLauncher() {
    }

    public static void main(String[] args) {
        long t0 = System.currentTimeMillis();
        String typeName = System.getProperty("nacos.deployment.type", "merged");
        DeploymentType type = DeploymentType.getType(typeName);
        if (type == DeploymentType.ILLEGAL) {
            throw new IllegalArgumentException("unknown nacos.deployment.type: " + typeName);
        }
        EnvUtil.setDeploymentType(type);
        try {
            NacosStartUpManager.start(NacosStartUp.CORE_START_UP_PHASE);
            ConfigurableApplicationContext core = new SpringApplicationBuilder(NacosServerBasicApplication.class)
                    .web(WebApplicationType.NONE)
                    .run(args);
            if (type != DeploymentType.CONSOLE) {
                NacosStartUpManager.start(NacosStartUp.WEB_START_UP_PHASE);
                new SpringApplicationBuilder(NacosServerWebApplication.class).parent(core).run(args);
            }
            if (type == DeploymentType.MERGED || type == DeploymentType.CONSOLE) {
                NacosStartUpManager.start(NacosStartUp.CONSOLE_START_UP_PHASE);
                new SpringApplicationBuilder(NacosConsole.class).parent(core).run(args);
            }
        } catch (Throwable e) {
            e.printStackTrace();
            System.err.println("RB-NACOS-LAUNCHER: failed: " + e);
            System.exit(1);
        }
        System.out.println("RB-NACOS-LAUNCHER: started " + type.getTypeName() + " in "
                + (System.currentTimeMillis() - t0) + " ms");
    }
}
