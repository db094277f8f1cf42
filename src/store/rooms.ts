// The RoomStore port: rooms and their members as committed, for readers on any node. Rooms
// and members are written only by the room log (writer.ts). Implementations: store/sqlite,
// store/postgres; behaviour suite: test/conformance/rooms.ts.
//
// Contract
// - A room's `lastSeq` is the highest seq it has given out, counting messages retention has
//   removed since; it never goes back.
// - Reads see every commit whose promise has resolved.
import type { Member, Room } from '../protocol/schema.js';

export interface RoomStore {
  getRoom(id: string): Promise<Room | null>;
  /** The direct room of a pair key, if one exists. */
  findDirect(directKey: string): Promise<Room | null>;
  /** Rooms the user is a member of, by room id. */
  roomsOf(user: string): Promise<Array<{ room: Room; member: Member }>>;
  /**
   * How many channels and groups the user is a member of, and how many of those that exist it
   * created (direct rooms are not counted).
   */
  countRooms(user: string): Promise<{ member: number; created: number }>;
  /** Public channels, by id, `limit` at most, after the given id. */
  publicRooms(limit: number, afterId?: string): Promise<Room[]>;
  /** How many rooms exist, by kind (kinds without rooms are absent). */
  roomCounts(): Promise<Record<string, number>>;
  getMember(room: string, user: string): Promise<Member | null>;
  /** Members in the order they joined. */
  members(room: string): Promise<Member[]>;
}
