// A source keeps one ClusterState current: files on disk, or a Kubernetes API server.

export interface ClusterSource {
  /** Starts reading; the first complete read marks the cluster live. */
  start(): void | Promise<void>;
  /**
   * The selection policy changed (a reload): read what it needs (ServiceExports for "exported")
   * without reading the rest again. Resolves once that is read, or has failed.
   */
  setPolicy?(policy: 'all' | 'exported' | 'labels'): void | Promise<void>;
  /**
   * clientNetworks changed to or from "auto" (a reload): start or stop learning the cluster's
   * networks from its Node objects (off: the learned networks are cleared).
   */
  setLearnNetworks?(on: boolean): void | Promise<void>;
  /** Stops every timer, watch and connection. */
  stop(): void | Promise<void>;
}
