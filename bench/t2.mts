import { channelSend } from "./groups/send.ts"
const c = channelSend(1)
for (let r = 0; r < 5; r++) {
  const n = 500_000
  const res = await c.run(n, { latency: false })
  console.log(c.label, (n / res.elapsedMs / 1000).toFixed(3), "M/s")
}
