import { assert, describe, it } from "@effect/vitest"
import { murmur2, partitionForKey } from "../../src/kafka/internal/murmur2.ts"

const utf8 = new TextEncoder()

/**
 * `[key, Utils.murmur2(key), partition of 3, of 8, of 12]`, computed by the
 * Java client itself (kafka-clients 4.1.1, `Utils.murmur2` and
 * `Utils.toPositive(h) % n`); the first six are also Kafka's own UtilsTest
 * vectors.
 */
const javaVectors: ReadonlyArray<readonly [string, number, number, number, number]> = [
  ["21", -973932308, 0, 4, 0],
  ["foobar", -790332482, 0, 6, 6],
  ["a-little-bit-long-string", -985981536, 2, 0, 8],
  ["a-little-bit-longer-string", -1486304829, 2, 3, 11],
  ["lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971, 2, 5, 5],
  ["abc", 479470107, 0, 3, 3],
  ["", 275646681, 0, 1, 9],
  ["a", -1563381124, 1, 4, 4],
  ["ab", 316155434, 2, 2, 2],
  ["order-1", 1221710326, 1, 6, 10],
  ["user-42", 1459644460, 1, 4, 4],
  ["héllo wörld ✓", -1290846696, 2, 0, 8],
  ["kafka", -798503068, 1, 4, 4]
]

describe("murmur2 (Kafka's default partitioner)", () => {
  it("hashes exactly as the Java client's Utils.murmur2", () => {
    for (const [key, hash] of javaVectors) assert.strictEqual(murmur2(utf8.encode(key)), hash, key)
  })

  it("places keys on the partitions Java places them on (sign bit masked, not Math.abs)", () => {
    for (const [key, , of3, of8, of12] of javaVectors) {
      assert.deepStrictEqual(
        [3, 8, 12].map((n) => partitionForKey(utf8.encode(key), n)),
        [of3, of8, of12],
        key
      )
    }
  })

  it("covers every tail length and byte value (bytes 0..255, as Java hashes them)", () => {
    assert.strictEqual(murmur2(Uint8Array.from({ length: 256 }, (_, i) => i)), -1948347274)
  })
})
