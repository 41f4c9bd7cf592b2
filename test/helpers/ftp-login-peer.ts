// A scripted FTP control connection for tests of what happens to a password: it greets, answers
// USER with 331 and QUIT with 221, and answers PASS and every other command as the test says.
import type net from 'node:net';
import { listen } from './net';

export interface FtpLoginScript {
  /** The 220 line sent on connect (with its CRLF). */
  greeting: string;
  /** The reply to PASS (with its CRLF), given the password sent. */
  pass(password: string): string;
  /** The reply to any command but USER, PASS and QUIT (with its CRLF). */
  other(line: string): string;
}

export async function ftpLoginPeer(script: FtpLoginScript) {
  return listen((s: net.Socket) => {
    s.write(script.greeting);
    let buf = '';
    s.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      let i: number;
      while ((i = buf.indexOf('\r\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 2);
        if (/^USER /i.test(line)) s.write('331 password please\r\n');
        else if (/^PASS /i.test(line)) s.write(script.pass(line.slice(5)));
        else if (/^QUIT/i.test(line)) s.end('221 bye\r\n');
        else s.write(script.other(line));
      }
    });
  });
}
