// The AttachmentStore port: the record of each uploaded file (who uploaded what to which room,
// its name, size, type, image size, where its bytes and preview are in the BlobStore, and the
// message that carries it once sent). The bytes themselves are the BlobStore's. Implementations:
// store/sqlite/attachments.ts and store/postgres/attachments.ts, in the Store's database.
//
// Contract
// - Each method is one atomic statement; a write's promise settles after it is durable.
// - `bind` is compare-and-set: it gives every listed attachment the message's seq only if all
//   of them belong to the room and the uploader and none is bound yet; otherwise it changes
//   nothing and rejects with `conflict`. So one upload is carried by one message at most.
// - The removal methods delete the records and resolve with them, so the caller can delete
//   their blobs: a record removed here is never returned again.
export interface Attachment {
  id: string;
  room: string;
  uploader: string;
  /** The sanitised file name. */
  name: string;
  size: number;
  /** The content type detected from the bytes. */
  type: string;
  /** Pixel size of an image (after its orientation is applied); null for other files. */
  width: number | null;
  height: number | null;
  /** Blob of the file's bytes. */
  blob: string;
  /** Blob of the bounded preview of an image. */
  preview: string | null;
  sha256: string;
  createdAt: number;
  /** The seq of the message that carries it; null until one does. */
  message: number | null;
}

export interface AttachmentStore {
  create(a: Attachment): Promise<void>;
  get(id: string): Promise<Attachment | null>;
  /** Removes one record; resolves with it, or null when there was none. */
  remove(id: string): Promise<Attachment | null>;
  /** Binds the uploads to the message `seq` (see the contract); resolves with them. */
  bind(room: string, uploader: string, ids: string[], seq: number): Promise<Attachment[]>;
  /** Removes the records of the room carried by these messages. */
  removeForMessages(room: string, seqs: number[]): Promise<Attachment[]>;
  /** Removes the records carried by messages of the room below `seq` (retention cut a prefix). */
  removeBelow(room: string, seq: number): Promise<Attachment[]>;
  /** Removes the records of the room no message carries. */
  removeUnboundOfRoom(room: string): Promise<Attachment[]>;
  /** Removes every record of the room, bound or not. */
  removeForRoom(room: string): Promise<Attachment[]>;
  /** Removes up to `limit` records never bound to a message and created before `before` (ms). */
  removeUnbound(before: number, limit: number): Promise<Attachment[]>;
  /** Bytes of the uploads of `uploader` that no message carries yet (the records' sizes). */
  unsentBytes(uploader: string): Promise<number>;
  /** Rooms that have records bound to messages (for the retention pass), after `afterRoom`, by id. */
  boundRooms(afterRoom: string, limit: number): Promise<string[]>;
}
