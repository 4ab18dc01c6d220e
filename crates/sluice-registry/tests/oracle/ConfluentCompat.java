// Confluent Schema Registry's own Avro compatibility verdicts, as a test
// oracle for sluice-registry (tests/confluent_oracle.rs).
//
// Run on the jars of Confluent's schema-registry client 7.0 (set up by
// `make setup` in /opt/sluice/debezium/libs):
//   java -cp '/opt/sluice/debezium/libs/*' ConfluentCompat.java
//
// Reads JSON lines on stdin, one case each:
//   {"id": "...", "schemas": ["<oldest>", ..., "<candidate>"]}
// and answers one JSON line per case, in order:
//   {"id": "...", "canonical": ["<AvroSchema.canonicalString()>", ...],
//    "levels": {"BACKWARD": true, ...}}
// or {"id": "...", "error": "..."} when Confluent cannot parse a schema.
// The candidate is checked against the earlier schemas (chronological order,
// as the registry passes a subject's versions) with every compatibility level.

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.confluent.kafka.schemaregistry.CompatibilityChecker;
import io.confluent.kafka.schemaregistry.CompatibilityLevel;
import io.confluent.kafka.schemaregistry.avro.AvroSchema;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

public class ConfluentCompat {
  public static void main(String[] args) throws Exception {
    ObjectMapper json = new ObjectMapper();
    BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    PrintStream out = new PrintStream(System.out, false, StandardCharsets.UTF_8);
    String line;
    while ((line = in.readLine()) != null) {
      if (line.isBlank()) {
        continue;
      }
      JsonNode request = json.readTree(line);
      ObjectNode answer = json.createObjectNode();
      answer.set("id", request.get("id"));
      try {
        List<AvroSchema> schemas = new ArrayList<>();
        ArrayNode canonical = answer.putArray("canonical");
        for (JsonNode text : request.get("schemas")) {
          AvroSchema schema = new AvroSchema(text.asText());
          schemas.add(schema);
          canonical.add(schema.canonicalString());
        }
        AvroSchema candidate = schemas.get(schemas.size() - 1);
        List<AvroSchema> previous = schemas.subList(0, schemas.size() - 1);
        ObjectNode levels = answer.putObject("levels");
        for (CompatibilityLevel level : CompatibilityLevel.values()) {
          List<String> problems = CompatibilityChecker.checker(level).isCompatible(candidate, previous);
          levels.put(level.name(), problems.isEmpty());
        }
      } catch (Exception e) {
        answer.remove("canonical");
        answer.remove("levels");
        answer.put("error", e.toString());
      }
      out.println(json.writeValueAsString(answer));
      out.flush();
    }
  }
}
