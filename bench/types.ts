// Shapes shared by the orchestrator (main thread) and the load-generator workers: the
// topology of a workload, its measured steps, and the messages they exchange.

export type TargetName = 'parley' | 'parley-mqtt' | 'socketio' | 'chat-service' | 'ws-relay';
export const TARGETS: readonly TargetName[] = ['parley', 'parley-mqtt', 'socketio', 'chat-service', 'ws-relay'];
/** Targets that run only some workloads (the others are skipped for them). */
export const TARGET_WORKLOADS: Partial<Record<TargetName, readonly string[]>> = { 'parley-mqtt': ['chat21'] };
/** The workloads run against every target (`all`). */
export type CompareWorkload = 'chat21' | 'fanout' | 'rooms' | 'ingest' | 'connections';
export const WORKLOADS: readonly CompareWorkload[] = ['chat21', 'fanout', 'rooms', 'ingest', 'connections'];
/** Parley on several nodes with a CPU quota each; run by name only (it needs root, and takes long). */
export type WorkloadName = CompareWorkload | 'cluster' | 'attachments' | 'history';
export const ALL_WORKLOADS: readonly WorkloadName[] = [...WORKLOADS, 'cluster', 'attachments', 'history'];
export type ClusterShape = 'small' | 'hot';
export const CLUSTER_SHAPES: readonly ClusterShape[] = ['small', 'hot'];

/** One client connection of the workload; one connection per user keeps loss accounting simple. */
export interface ConnSpec {
  index: number;
  user: string;
  /** Probes record delivery latency; sinks only count and check. */
  probe: boolean;
  /** Logical rooms this connection is a member of, for the expectation of deliveries. */
  rooms: string[];
  localAddress: string;
  /** Cluster workload: the node (index into `TargetInfo.ports`) this connection goes to. */
  node?: number;
}

export interface RoomSpec {
  /** Logical id; the target may give the room another id (Parley's direct rooms). */
  id: string;
  kind: 'channel' | 'group' | 'direct';
  /** Connection indexes; the first one creates the room. */
  members: number[];
}

export interface SenderSpec {
  conn: number;
  room: string;
}

export interface StepSpec {
  name: string;
  /** Messages per second over all senders, or 'max': each sender keeps `window` sends in flight. */
  rate: number | 'max';
  window: number;
  durationMs: number;
  senders: SenderSpec[];
  /** Text bytes per message (the payload is padded to this). */
  size: number;
  /** Not reported: lets the server's JIT warm up before the first measured step. */
  warmup?: boolean;
}

export interface TargetInfo {
  name: TargetName;
  port: number;
  secret: string;
  /** Cluster workload: every node's port (a connection's `node` picks one). */
  ports?: number[];
}

// ---- worker protocol ---------------------------------------------------------------------
export type ToWorker =
  | { t: 'open'; rid: number; target: TargetInfo; conns: ConnSpec[]; concurrency: number }
  | { t: 'owners'; rid: number; rooms: Array<RoomSpec & { users: string[] }> }
  | { t: 'members'; rid: number; rooms: Array<RoomSpec & { actual: string }>; actual: Record<string, string> }
  | { t: 'step'; rid: number; stepId: number; step: StepSpec; rate: number | 'max'; senders: SenderSpec[] }
  | { t: 'expect'; rid: number; stepId: number; streams: StreamEnd[] }
  | { t: 'collect'; rid: number }
  | { t: 'close'; rid: number };

/** What a sender stream finally sent: room, stream id, last counter, sends that failed. */
export type StreamEnd = [room: string, sid: string, last: number, failed: number];

export interface Tick {
  t: 'tick';
  sent: number;
  acked: number;
  received: number;
  frames: number;
  expected: number;
}

export interface OpenResult {
  opened: number;
  failed: number;
  firstError?: string;
  connectMs: number[];
  wallMs: number;
}
export interface SentResult {
  streams: StreamEnd[];
  sent: number;
  acked: number;
  errors: number;
  /** Sends acknowledged after more than 10 s, or never. */
  timeouts: number;
  firstError?: string;
  ack: string;
  firstSendUs: number;
  lastSendUs: number;
}
export interface CollectResult {
  expected: number;
  received: number;
  lost: number;
  duplicated: number;
  outOfOrder: number;
  late: number;
  latency: string;
  closedEarly: number;
}
export type FromWorker = Tick | { t: 'reply'; rid: number; ok: boolean; error?: string; data?: unknown };
