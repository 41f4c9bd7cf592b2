// A TDS test server: enough of MS-TDS to be a faithful peer for the SQL Server prober.
// PRELOGIN with a configurable version and encryption policy, TLS inside TDS (handshake
// wrapped in PRELOGIN packets, then raw TLS records, or login-only encryption), LOGIN7 with SQL
// authentication, SQL batches answered with COLMETADATA/ROW/DONE, and ATTENTION.
// It is checked against tedious, FreeTDS tsql and nmap in test/mssql/peer.test.ts.
import net from 'node:net';
import tls from 'node:tls';
import { Duplex } from 'node:stream';
import { MessageFramer, PacketType, encodeMessage, encodePacket } from '../../../exporters/mssql/packet';
import { Encrypt, PreloginOption, encodePreloginOptions, parsePrelogin } from '../../../exporters/mssql/prelogin';
import { selfSignedCert } from './cert';
import {
  COLLATION,
  DoneStatus,
  colMetadata,
  done,
  envChangeCollation,
  envChangeString,
  errorToken,
  infoToken,
  loginAck,
  row,
  Token,
  type Cell,
  type Column,
} from './tokens';

/**
 * Server-side encryption setting, as SQL Server's "Force Encryption" / certificate state;
 * 'strict' is TDS 8 "Force Strict Encryption": TLS (ALPN tds/8.0) before any TDS byte.
 */
export type PeerEncryption = 'off' | 'required' | 'not_supported' | 'strict';

export interface QueryResult {
  columns: Column[];
  rows: Cell[][];
}

export type QueryAnswer =
  | QueryResult
  | { error: { number: number; message: string; class?: number } }
  /** Several ERROR tokens for one batch, as SQL Server sends 300 then 297 for a missing permission. */
  | { errors: { number: number; message: string; class?: number }[] }
  | { delayMs: number; result: QueryResult };

export interface TdsPeerOptions {
  host?: string;
  port?: number;
  /** Version advertised in PRELOGIN and LOGINACK. */
  version?: { major: number; minor: number; build: number; subbuild: number };
  encryption?: PeerEncryption;
  /** SQL logins: user -> password. */
  users?: Record<string, string>;
  /** Instance name this server answers INSTOPT for (besides "" and MSSQLServer). */
  instanceName?: string;
  serverName?: string;
  /** Extra queries, keyed by normalised text (lower case, single spaces, no trailing ";"). */
  queries?: Record<string, QueryAnswer>;
  /** Drop the connection on LOGIN7, as SQL Server 2000 before SP3 does to remote clients. */
  dropLogin?: boolean;
  /** Never answer LOGIN7 (a server stuck in recovery, or a middlebox that eats the packet). */
  stallLogin?: boolean;
  /** Never answer PRELOGIN (a hung service, or something other than SQL Server that waits for its client). */
  stallPrelogin?: boolean;
  /** Never answer the SQL batches it picks (normalised text) after a good login: a hung worker pool. */
  stallSql?: (sql: string) => boolean;
  /**
   * Hostile: the raw token stream answering LOGIN7, whatever the credentials (framed in
   * TABULAR_RESULT packets by the peer); undefined logs in normally. Called once per LOGIN7.
   * Batches that follow are answered as after a good login.
   */
  loginReply?: () => Buffer | undefined;
  /**
   * Hostile: the raw token stream answering a SQL batch after a normal login (normalised text,
   * see normaliseSql); undefined answers it normally. tedious's own batch after LOGINACK (its
   * SET options) is part of the login rung.
   */
  batchReply?: (sql: string) => Buffer | undefined;
  /** Certificate and key to serve (default: a self-signed one for localhost, valid 30 days). */
  certificate?: { cert: Buffer; key: Buffer };
  /** Called for every event worth seeing in a manual run. */
  log?: (line: string) => void;
}

export interface TdsPeer {
  port: number;
  host: string;
  /** LOGIN7 user names seen, in order (for assertions). */
  logins: string[];
  /** Normalised SQL batches received, in order. */
  batches: string[];
  close(): Promise<void>;
}

const PRODUCT_YEARS: Record<number, string> = {
  8: '2000',
  9: '2005',
  10: '2008',
  11: '2012',
  12: '2014',
  13: '2016',
  14: '2017',
  15: '2019',
  16: '2022',
  17: '2025',
};

export function normaliseSql(s: string): string {
  return s.replace(/\s+/g, ' ').trim().replace(/;+$/, '').trim().toLowerCase();
}

export async function startTdsPeer(opts: TdsPeerOptions = {}): Promise<TdsPeer> {
  const version = opts.version ?? { major: 16, minor: 0, build: 4135, subbuild: 4 };
  const encryption = opts.encryption ?? 'off';
  const users = opts.users ?? {};
  const serverName = opts.serverName ?? 'TDSPEER';
  const log = opts.log ?? ((): void => undefined);
  const secureContext =
    encryption === 'not_supported'
      ? undefined
      : tls.createSecureContext({
          ...(opts.certificate ?? selfSignedCert()),
          maxVersion: encryption === 'strict' ? 'TLSv1.3' : 'TLSv1.2',
        });
  const sockets = new Set<net.Socket>();
  const peer: TdsPeer = {
    port: 0,
    host: opts.host ?? '127.0.0.1',
    logins: [],
    batches: [],
    close: async () => undefined,
  };

  const versionString =
    `Microsoft SQL Server ${PRODUCT_YEARS[version.major] ?? ''} - ` +
    `${version.major}.${version.minor}.${version.build}.${version.subbuild} (X64) \n` +
    `\tTest peer for portprobe\n\tDeveloper Edition (64-bit) on Linux\n`;

  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    new Connection(socket).start();
  });

  class Connection {
    private mode: 'plain' | 'tls-wrapped' | 'tls-raw' = 'plain';
    private readonly framer = new MessageFramer({ maxPacketBytes: 32768, maxMessageBytes: 1 << 20 });
    private readonly handshakeFramer = new MessageFramer({ maxPacketBytes: 32768, maxMessageBytes: 1 << 20 });
    private readonly tlsFramer = new MessageFramer({ maxPacketBytes: 32768, maxMessageBytes: 1 << 20 });
    private tlsSocket?: tls.TLSSocket;
    private inner?: Duplex;
    private tlsDetached = false;
    private loginOnlyTls = false;
    private loggedIn = false;
    private tds = 0x74000004;
    private packetSize = 4096;
    private pending?: NodeJS.Timeout;
    private preloginDone = false;
    private rpc = false;

    constructor(private readonly socket: net.Socket) {}

    start(): void {
      if (encryption === 'strict') {
        // TDS 8: the whole conversation, PRELOGIN included, runs inside TLS.
        this.mode = 'tls-raw';
        this.tlsSocket = new tls.TLSSocket(this.socket, { isServer: true, secureContext, ALPNProtocols: ['tds/8.0'] });
        this.tlsSocket.on('error', (err: Error) => this.abort(`TLS: ${err.message}`));
        this.tlsSocket.on('secure', () =>
          log(`TLS (strict) handshake done, ALPN ${String(this.tlsSocket?.alpnProtocol)}`),
        );
        this.tlsSocket.on('data', (chunk: Buffer) => {
          this.tlsFramer.push(chunk);
          this.drain(this.tlsFramer);
        });
        return;
      }
      this.socket.on('data', (chunk: Buffer) => this.onRaw(chunk));
    }

    private onRaw(chunk: Buffer): void {
      if (this.mode === 'plain') {
        this.framer.push(chunk);
        this.drain(this.framer);
        return;
      }
      if (
        this.mode === 'tls-wrapped' &&
        chunk[0] >= 0x14 &&
        chunk[0] <= 0x17 &&
        this.handshakeFramer.pendingBytes === 0
      ) {
        // The client finished its handshake: from here on TLS records travel unwrapped.
        this.mode = 'tls-raw';
      }
      if (this.mode === 'tls-wrapped') {
        this.handshakeFramer.push(chunk);
        if (this.handshakeFramer.error) return this.abort(`bad handshake packet: ${this.handshakeFramer.error}`);
        for (let m = this.handshakeFramer.shift(); m; m = this.handshakeFramer.shift()) this.inner?.push(m.payload);
      } else {
        this.inner?.push(chunk);
      }
    }

    private drain(f: MessageFramer): void {
      if (f.error) return this.abort(`bad packet: ${f.error}`);
      for (let m = f.shift(); m; m = f.shift()) {
        try {
          this.onMessage(m.type, m.payload);
        } catch (err) {
          this.abort(`cannot handle message 0x${m.type.toString(16)}: ${(err as Error).message}`);
          return;
        }
        if (this.mode !== 'plain' && f === this.framer) return;
      }
    }

    private abort(why: string): void {
      log(`closing connection: ${why}`);
      this.socket.destroy();
    }

    private send(type: number, payload: Buffer): void {
      const packets = encodeMessage(type, payload, this.packetSize);
      const viaTls = this.tlsSocket && !this.tlsDetached && this.mode === 'tls-raw';
      for (const p of packets) {
        if (viaTls) this.tlsSocket?.write(p);
        else this.socket.write(p);
      }
    }

    private onMessage(type: number, payload: Buffer): void {
      switch (type) {
        case PacketType.PRELOGIN:
          return this.onPrelogin(payload);
        case PacketType.LOGIN7:
          return this.onLogin(payload);
        case PacketType.SQL_BATCH:
          return this.onBatch(payload);
        case PacketType.RPC:
          return this.onRpc(payload);
        case PacketType.ATTENTION:
          // A query still running ends its response message first; the acknowledgement
          // (DONE with the ATTN bit) then comes as a message of its own.
          if (this.pending) {
            clearTimeout(this.pending);
            this.pending = undefined;
            this.send(PacketType.TABULAR_RESULT, this.finish(DoneStatus.FINAL, 0));
          }
          log('ATTENTION acknowledged');
          return this.send(PacketType.TABULAR_RESULT, done(DoneStatus.ATTN, 0, 0, this.tds));
        default:
          return this.abort(`unexpected packet type 0x${type.toString(16)}`);
      }
    }

    private onPrelogin(payload: Buffer): void {
      if (this.preloginDone) return this.abort('second PRELOGIN');
      this.preloginDone = true;
      if (opts.stallPrelogin) return log('PRELOGIN ignored (stallPrelogin)');
      const parsed = parsePrelogin(payload);
      if (!parsed.ok) return this.abort(`bad PRELOGIN: ${parsed.error}`);
      const p = parsed.prelogin;
      const client = (p.encryptionByte ?? Encrypt.NOT_SUP) & 0x0f;
      // MS-TDS 2.2.6.5, table of server answers.
      let answer: number;
      let terminate = false;
      if (encryption === 'not_supported') {
        answer = Encrypt.NOT_SUP;
        terminate = client === Encrypt.ON || client === Encrypt.REQ;
      } else if (encryption === 'strict') {
        answer = Encrypt.REQ; // TLS is already up; the client ignores this value under TDS 8
      } else if (encryption === 'required') {
        answer = client === Encrypt.ON || client === Encrypt.REQ ? Encrypt.ON : Encrypt.REQ;
        terminate = client === Encrypt.NOT_SUP;
      } else {
        answer = client === Encrypt.REQ ? Encrypt.ON : client;
      }
      const requested = p.instance ? p.instance.toString('latin1').replace(/\0.*$/s, '') : '';
      const known = ['', 'mssqlserver', (opts.instanceName ?? '').toLowerCase()];
      const instOk = known.includes(requested.toLowerCase());
      const ver = Buffer.alloc(6);
      ver[0] = version.major;
      ver[1] = version.minor;
      ver.writeUInt16BE(version.build, 2);
      ver.writeUInt16BE(version.subbuild, 4);
      const options: [number, Buffer][] = [
        [PreloginOption.VERSION, ver],
        [PreloginOption.ENCRYPTION, Buffer.from([answer])],
        [PreloginOption.INSTOPT, Buffer.from([instOk ? 0 : 1])],
        [PreloginOption.THREADID, Buffer.alloc(0)],
        [PreloginOption.MARS, Buffer.from([0])],
      ];
      if (p.fedAuthRequired !== undefined) options.push([PreloginOption.FEDAUTHREQUIRED, Buffer.from([0])]);
      this.send(PacketType.TABULAR_RESULT, encodePreloginOptions(options));
      log(`PRELOGIN client encryption=${client} answer=${answer} instance="${requested}"`);
      if (terminate) {
        this.socket.end();
        return;
      }
      if (answer !== Encrypt.NOT_SUP && secureContext && encryption !== 'strict') {
        this.loginOnlyTls = answer === Encrypt.OFF;
        this.startTls();
      }
    }

    private startTls(): void {
      this.mode = 'tls-wrapped';
      const sock = this.socket;
      this.inner = new Duplex({
        read: () => undefined,
        write: (chunk: Buffer, _enc, cb) => {
          if (!this.tlsDetached) {
            if (this.mode === 'tls-wrapped') sock.write(encodePacket(PacketType.PRELOGIN, chunk));
            else sock.write(chunk);
          }
          cb();
        },
        final: (cb) => cb(),
        destroy: (err, cb) => cb(err),
      });
      this.tlsSocket = new tls.TLSSocket(this.inner, { isServer: true, secureContext });
      this.tlsSocket.on('error', (err: Error) => {
        if (!this.tlsDetached) this.abort(`TLS: ${err.message}`);
      });
      this.tlsSocket.on('secure', () => log('TLS handshake done'));
      this.tlsSocket.on('data', (chunk: Buffer) => {
        if (this.tlsDetached) return;
        this.tlsFramer.push(chunk);
        this.drain(this.tlsFramer);
      });
    }

    private onLogin(payload: Buffer): void {
      if (this.loggedIn) return this.abort('second LOGIN7');
      if (this.loginOnlyTls && this.tlsSocket) {
        // Login-only encryption: everything after the LOGIN7 travels in the clear again.
        this.tlsDetached = true;
        this.mode = 'plain';
        this.tlsSocket.destroy();
      } else if (encryption === 'required' && this.mode !== 'tls-raw') {
        return this.abort('LOGIN7 before TLS on a server that requires encryption');
      }
      if (opts.dropLogin) return this.abort('dropLogin is set');
      if (opts.stallLogin) return log('LOGIN7 ignored (stallLogin)');
      const hostile = opts.loginReply?.();
      if (hostile) {
        if (peer.logins.length < 10000) peer.logins.push('(hostile)');
        this.loggedIn = true;
        return this.send(PacketType.TABULAR_RESULT, hostile);
      }
      if (payload.length < 94) return this.abort('LOGIN7 shorter than its fixed part');
      const clientTds = payload.readUInt32LE(4);
      const known = [0x70000000, 0x71000000, 0x71000001, 0x72090002, 0x730a0003, 0x730b0003, 0x74000004];
      this.tds = known.includes(clientTds) ? clientTds : 0x74000004;
      const requestedSize = payload.readUInt32LE(8);
      if (requestedSize >= 512 && requestedSize <= 32767) this.packetSize = requestedSize;
      const str = (at: number, obfuscated = false): string => {
        const ib = payload.readUInt16LE(at);
        const cch = payload.readUInt16LE(at + 2);
        const raw = Buffer.from(payload.subarray(ib, ib + cch * 2));
        if (obfuscated) {
          for (let i = 0; i < raw.length; i++) {
            const b = raw[i] ^ 0xa5;
            raw[i] = ((b & 0x0f) << 4) | (b >> 4);
          }
        }
        return raw.toString('utf16le');
      };
      const integrated = (payload[25] & 0x80) !== 0;
      const user = str(40);
      const password = str(44, true);
      const database = str(68) || 'master';
      peer.logins.push(integrated ? '(integrated)' : user);
      log(`LOGIN7 user="${user}" integrated=${integrated} tds=0x${this.tds.toString(16)}`);
      const fail = (number: number, message: string): void => {
        this.send(
          PacketType.TABULAR_RESULT,
          Buffer.concat([
            errorToken({ number, state: 1, class: 14, message, serverName }, this.tds),
            done(DoneStatus.ERROR, 0, 0, this.tds),
          ]),
        );
      };
      if (integrated) {
        return fail(
          18452,
          'Login failed. The login is from an untrusted domain and cannot be used with Integrated authentication.',
        );
      }
      if (!(user in users) || users[user] !== password) {
        return fail(18456, `Login failed for user '${user}'.`);
      }
      this.loggedIn = true;
      const msg = (number: number, message: string) => ({ number, state: 2, class: 0, message, serverName, line: 1 });
      this.send(
        PacketType.TABULAR_RESULT,
        Buffer.concat([
          envChangeString(1, database, 'master'),
          infoToken(msg(5701, `Changed database context to '${database}'.`), this.tds),
          envChangeCollation(COLLATION),
          envChangeString(2, 'us_english', ''),
          infoToken(msg(5703, 'Changed language setting to us_english.'), this.tds),
          envChangeString(4, String(this.packetSize), String(this.packetSize)),
          loginAck(this.tds, 'Microsoft SQL Server', version),
          done(DoneStatus.FINAL, 0, 0, this.tds),
        ]),
      );
    }

    private skipHeaders(payload: Buffer): Buffer {
      if (this.tds >= 0x72000000 && payload.length >= 4) {
        const total = payload.readUInt32LE(0);
        if (total >= 4 && total <= payload.length) return payload.subarray(total);
      }
      return payload;
    }

    private onBatch(payload: Buffer): void {
      if (!this.loggedIn) return this.abort('SQL batch before login');
      this.answer(this.skipHeaders(payload).toString('utf16le'), false);
    }

    /** RPC: only sp_executesql (ProcID 10) with its statement as the first parameter. */
    private onRpc(payload: Buffer): void {
      if (!this.loggedIn) return this.abort('RPC before login');
      const b = this.skipHeaders(payload);
      let pos = 0;
      if (b.readUInt16LE(pos) !== 0xffff || b.readUInt16LE(pos + 2) !== 10) {
        return this.abort('RPC other than sp_executesql');
      }
      pos += 6; // ProcIDSwitch, ProcID, OptionFlags
      pos += 1 + b[pos] * 2 + 1; // parameter name, status flags
      const type = b[pos];
      if (type !== 0xe7 && type !== 0xef) return this.abort(`sp_executesql statement of type 0x${type.toString(16)}`);
      const maxLen = b.readUInt16LE(pos + 1);
      pos += 3 + 5;
      let text: Buffer;
      if (maxLen === 0xffff) {
        pos += 8; // PLP total length
        const chunks: Buffer[] = [];
        for (;;) {
          const n = b.readUInt32LE(pos);
          pos += 4;
          if (n === 0) break;
          chunks.push(b.subarray(pos, pos + n));
          pos += n;
        }
        text = Buffer.concat(chunks);
      } else {
        const n = b.readUInt16LE(pos);
        text = b.subarray(pos + 2, pos + 2 + n);
      }
      this.answer(text.toString('utf16le'), true);
    }

    private answer(sqlText: string, rpc: boolean): void {
      const sql = normaliseSql(sqlText);
      this.rpc = rpc;
      if (peer.batches.length < 10000) peer.batches.push(sql);
      log(`SQL batch: ${sql.slice(0, 200)}`);
      if (opts.stallSql?.(sql)) return log('SQL batch ignored (stallSql)');
      const hostile = opts.batchReply?.(sql);
      if (hostile) return this.send(PacketType.TABULAR_RESULT, hostile);
      const answer: QueryAnswer | undefined =
        sql === 'select @@version'
          ? { columns: [{ name: '', type: 'nvarchar' }], rows: [[versionString]] }
          : opts.queries?.[sql];
      if (answer === undefined) {
        if (/^(set|use|begin|commit|rollback)\b/.test(sql)) {
          return this.send(PacketType.TABULAR_RESULT, this.finish(DoneStatus.FINAL, 0));
        }
        return this.send(
          PacketType.TABULAR_RESULT,
          this.errorReply(208, `Invalid object name '${sql.slice(0, 60)}'.`, 16),
        );
      }
      if ('errors' in answer) {
        return this.send(
          PacketType.TABULAR_RESULT,
          Buffer.concat([
            ...answer.errors.map((e) =>
              errorToken(
                { number: e.number, state: 1, class: e.class ?? 16, message: e.message, serverName, line: 1 },
                this.tds,
              ),
            ),
            this.finish(DoneStatus.ERROR, 0),
          ]),
        );
      }
      if ('error' in answer) {
        return this.send(
          PacketType.TABULAR_RESULT,
          this.errorReply(answer.error.number, answer.error.message, answer.error.class ?? 16),
        );
      }
      if ('delayMs' in answer) {
        this.pending = setTimeout(() => {
          this.pending = undefined;
          this.send(PacketType.TABULAR_RESULT, this.resultReply(answer.result));
        }, answer.delayMs);
        return;
      }
      this.send(PacketType.TABULAR_RESULT, this.resultReply(answer));
    }

    /** A batch ends in DONE; sp_executesql in DONEINPROC, RETURNSTATUS and DONEPROC. */
    private finish(status: number, rows: number): Buffer {
      if (!this.rpc) return done(status, 0xc1, rows, this.tds);
      const inProc = done(status | DoneStatus.MORE, 0xc1, rows, this.tds);
      inProc[0] = Token.DONEINPROC;
      const proc = done(status & DoneStatus.ERROR, 0xe0, 0, this.tds);
      proc[0] = Token.DONEPROC;
      return Buffer.concat([inProc, Buffer.from([Token.RETURNSTATUS, 0, 0, 0, 0]), proc]);
    }

    private errorReply(number: number, message: string, cls: number): Buffer {
      return Buffer.concat([
        errorToken({ number, state: 1, class: cls, message, serverName, line: 1 }, this.tds),
        this.finish(DoneStatus.ERROR, 0),
      ]);
    }

    private resultReply(r: QueryResult): Buffer {
      return Buffer.concat([
        colMetadata(r.columns),
        ...r.rows.map((cells) => row(r.columns, cells)),
        this.finish(DoneStatus.COUNT, r.rows.length),
      ]);
    }
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, peer.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  peer.port = (server.address() as net.AddressInfo).port;
  peer.close = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
  return peer;
}
