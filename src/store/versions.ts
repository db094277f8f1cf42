// The versions port: a message's earlier versions. Edits are messages of their own (kind
// `edit`, `target` = the edited seq), so this only reads what every Store already keeps.
// Implementations: store/sqlite/versions.ts and store/postgres/versions.ts.
//
// Contract: a read sees every append whose promise has resolved; edits come in seq order.
export interface Edit {
  seq: number;
  text: string;
  ts: number;
}

export interface VersionStore {
  /**
   * The edits of a message in order, and whether a `delete` message targets it. With `viewer`,
   * edits hidden from that user (made after they blocked the author) are left out: the viewer
   * knows the message as it was when they blocked its author.
   */
  edits(room: string, seq: number, viewer?: string): Promise<{ edits: Edit[]; deleted: boolean }>;
}
