// Readiness probe used by scripts/kafka/up.sh (run as a single-file Java program:
//   java -cp ".kafka/libs/*" scripts/kafka/MetadataProbe.java 127.0.0.1:9092 [timeoutMs] [minBrokers]).
// Exits 0 once the broker answers a real Metadata/DescribeCluster request with at least
// minBrokers (default 1) live brokers and an active controller, 1 otherwise.
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.common.Node;

public class MetadataProbe {
  public static void main(String[] args) {
    String bootstrap = args.length > 0 ? args[0] : "127.0.0.1:9092";
    long deadline = System.currentTimeMillis() + (args.length > 1 ? Long.parseLong(args[1]) : 30_000L);
    int minBrokers = args.length > 2 ? Integer.parseInt(args[2]) : 1;
    Properties props = new Properties();
    props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    props.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "5000");
    props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "5000");
    props.put(AdminClientConfig.CLIENT_ID_CONFIG, "effect-faust-kafka-probe");
    String last = "no attempt";
    try (Admin admin = Admin.create(props)) {
      while (System.currentTimeMillis() < deadline) {
        try {
          DescribeClusterResult r = admin.describeCluster();
          String clusterId = r.clusterId().get(5, TimeUnit.SECONDS);
          int nodes = r.nodes().get(5, TimeUnit.SECONDS).size();
          Node controller = r.controller().get(5, TimeUnit.SECONDS);
          if (nodes >= minBrokers && controller != null && !controller.isEmpty()) {
            // A real metadata round trip for (all) topics as well.
            int topics = admin.listTopics().names().get(5, TimeUnit.SECONDS).size();
            System.out.println("kafka ready: cluster.id=" + clusterId + " brokers=" + nodes
                + " controller=" + controller.idString() + " topics=" + topics);
            System.exit(0);
          }
          last = "brokers=" + nodes + " controller=" + controller;
        } catch (Exception e) {
          last = e.toString();
        }
        try { Thread.sleep(500); } catch (InterruptedException ie) { break; }
      }
    }
    System.err.println("kafka not ready at " + bootstrap + ": " + last);
    System.exit(1);
  }
}
