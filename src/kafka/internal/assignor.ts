import type { GroupAssignment, GroupPartitionsAssigner, GroupPartitionsAssignments } from "@platformatic/kafka"

/**
 * The group leader's partition assignment: round-robin, each topic's
 * partitions among the members that subscribe to it (the client's own
 * round-robin hands every partition to any member, and a member drops the
 * partitions of topics it does not read). Several topics read under one
 * `groupId` — common in Faust apps — are then all read. Members and topics
 * are taken in sorted order, so every leader computes the same assignment,
 * and the turn carries over from topic to topic, so the load spreads.
 *
 * The topics are every member's subscriptions (the leader's alone would
 * leave a topic only other members read unassigned). A member whose
 * subscription is unknown is taken to read every topic.
 */
export const bySubscription: GroupPartitionsAssigner = (_leader, members, leaderTopics, metadata) => {
  const memberIds = Array.from(members.keys()).sort()
  const assignments = new Map<string, Map<string, GroupAssignment>>(memberIds.map((id) => [id, new Map()]))
  // Every member's topics, not only the leader's (the client passes the leader's; its metadata
  // covers every member's subscription).
  const topics = new Set(leaderTopics)
  for (const member of members.values()) for (const topic of member.topics ?? []) topics.add(topic)
  let turn = 0
  for (const topic of Array.from(topics).sort()) {
    const readers = memberIds.filter((id) => {
      const subscribed = members.get(id)?.topics
      return subscribed === undefined || subscribed.length === 0 || subscribed.includes(topic)
    })
    if (readers.length === 0) continue
    const count = metadata.topics.get(topic)?.partitionsCount ?? 0
    for (let partition = 0; partition < count; partition++) {
      const member = assignments.get(readers[turn++ % readers.length])!
      let assignment = member.get(topic)
      if (assignment === undefined) {
        assignment = { topic, partitions: [] }
        member.set(topic, assignment)
      }
      assignment.partitions.push(partition)
    }
  }
  return memberIds.map((memberId): GroupPartitionsAssignments => ({
    memberId,
    assignments: assignments.get(memberId)!
  }))
}
