/** The part of node-zookeeper-client 1.1.3 the adapter uses (the package ships no types). */
declare module 'node-zookeeper-client' {
  import type { EventEmitter } from 'node:events';

  export class State {
    readonly name: string;
    readonly code: number;
    static readonly SYNC_CONNECTED: State;
    static readonly DISCONNECTED: State;
    static readonly EXPIRED: State;
    static readonly AUTH_FAILED: State;
    static readonly CONNECTED_READ_ONLY: State;
    static readonly SASL_AUTHENTICATED: State;
  }

  export class Event {
    static readonly NODE_CREATED: number;
    static readonly NODE_DELETED: number;
    static readonly NODE_DATA_CHANGED: number;
    static readonly NODE_CHILDREN_CHANGED: number;
    getType(): number;
    getName(): string;
    getPath(): string;
  }

  export class Exception extends Error {
    static readonly OK: number;
    static readonly CONNECTION_LOSS: number;
    static readonly OPERATION_TIMEOUT: number;
    static readonly NO_NODE: number;
    static readonly NO_AUTH: number;
    static readonly NODE_EXISTS: number;
    static readonly SESSION_EXPIRED: number;
    static readonly AUTH_FAILED: number;
    getCode(): number;
    getName(): string;
    getPath(): string | undefined;
  }

  export interface Stat {
    readonly version: number;
    readonly dataLength: number;
    readonly numChildren: number;
    /** Session id of the owner of an ephemeral node; all zero for a persistent one. */
    readonly ephemeralOwner: Buffer;
  }

  export class Id {
    constructor(scheme: string, id: string);
  }

  export class ACL {
    constructor(permission: number, id: Id);
    static readonly OPEN_ACL_UNSAFE: ACL[];
    static readonly CREATOR_ALL_ACL: ACL[];
  }

  export const Permission: {
    readonly READ: number;
    readonly WRITE: number;
    readonly CREATE: number;
    readonly DELETE: number;
    readonly ADMIN: number;
    readonly ALL: number;
  };
  export const CreateMode: {
    readonly PERSISTENT: number;
    readonly EPHEMERAL: number;
    readonly PERSISTENT_SEQUENTIAL: number;
    readonly EPHEMERAL_SEQUENTIAL: number;
  };

  export type Watcher = (event: Event) => void;

  export interface Client extends EventEmitter {
    connect(): void;
    close(): void;
    getState(): State;
    getSessionId(): Buffer;
    getSessionTimeout(): number;
    addAuthInfo(scheme: string, auth: Buffer): void;
    getChildren(
      path: string,
      watcher: Watcher | undefined,
      callback: (error: Exception | Error | null, children: string[], stat: Stat) => void,
    ): void;
    getChildren(
      path: string,
      callback: (error: Exception | Error | null, children: string[], stat: Stat) => void,
    ): void;
    getData(
      path: string,
      watcher: Watcher | undefined,
      callback: (error: Exception | Error | null, data: Buffer | undefined, stat: Stat) => void,
    ): void;
    getData(
      path: string,
      callback: (error: Exception | Error | null, data: Buffer | undefined, stat: Stat) => void,
    ): void;
    exists(path: string, callback: (error: Exception | Error | null, stat: Stat | null) => void): void;
    create(
      path: string,
      data: Buffer | null,
      acls: ACL[],
      mode: number,
      callback: (error: Exception | Error | null, path: string) => void,
    ): void;
    create(
      path: string,
      data: Buffer | null,
      mode: number,
      callback: (error: Exception | Error | null, path: string) => void,
    ): void;
    setData(
      path: string,
      data: Buffer | null,
      version: number,
      callback: (error: Exception | Error | null, stat: Stat) => void,
    ): void;
    remove(path: string, version: number, callback: (error: Exception | Error | null) => void): void;
    removeRecursive(path: string, version: number, callback: (error: Exception | Error | null) => void): void;
    mkdirp(
      path: string,
      data: Buffer | null,
      acls: ACL[],
      mode: number,
      callback: (error: Exception | Error | null, path: string) => void,
    ): void;
    mkdirp(path: string, callback: (error: Exception | Error | null, path: string) => void): void;
  }

  export function createClient(
    connectionString: string,
    options?: { sessionTimeout?: number; spinDelay?: number; retries?: number },
  ): Client;

  const zookeeper: {
    createClient: typeof createClient;
    State: typeof State;
    Event: typeof Event;
    Exception: typeof Exception;
    ACL: typeof ACL;
    Id: typeof Id;
    Permission: typeof Permission;
    CreateMode: typeof CreateMode;
  };
  export default zookeeper;
}
