/** Whether a Kafka address accepts connections: shared by the suite and its global setup. */
import { connect } from "node:net"

/** Whether something accepts a TCP connection at `host:port` within a second. */
export const reachable = (server: string): Promise<boolean> =>
  new Promise((resolve) => {
    const [host, port] = [server.slice(0, server.lastIndexOf(":")), Number(server.slice(server.lastIndexOf(":") + 1))]
    const socket = connect({ host, port })
    socket.setTimeout(1_000)
    socket.once("connect", () => {
      socket.destroy()
      resolve(true)
    })
    socket.once("timeout", () => {
      socket.destroy()
      resolve(false)
    })
    socket.once("error", () => resolve(false))
  })
