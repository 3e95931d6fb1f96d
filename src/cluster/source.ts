// A source keeps one ClusterState current: files on disk, or a Kubernetes API server.

export interface ClusterSource {
  /** Starts reading; the first complete read marks the cluster live. */
  start(): void | Promise<void>;
  /** Stops every timer, watch and connection. */
  stop(): void | Promise<void>;
}
