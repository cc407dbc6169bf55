import { channelSend, rawQueue, pubSub } from "./groups/send.ts"
for (const c of [channelSend(1), rawQueue, pubSub(1), channelSend(4), pubSub(4), channelSend(16), pubSub(16)]) {
  for (let r = 0; r < 2; r++) {
    const n = 200_000
    const res = await c.run(n, { latency: false })
    console.log(c.label, (n / res.elapsedMs / 1000).toFixed(3), "M/s")
  }
}
const l = await channelSend(1).run(100000, {latency: true}); const s = Float64Array.from(l.latencies!).sort(); console.log(s[50000], s[99000])
