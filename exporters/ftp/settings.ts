// Settings of `modules.<name>.ftp`: type, JSON Schema (published for editors), defaults and
// the semantic checks the schema cannot express.
import net from 'node:net';
import { SECRET_REF_PATTERN, type Secret } from '../secret';
import type { JsonSchema } from '../types';
import { IP_PROTOCOL_PROPERTIES, TLS_CONFIG_SCHEMA, parseHostPort, type IpPreference, type TlsSettings } from '../net';
import { parsePortRange } from './passive';

export type FtpTlsMode = 'none' | 'explicit' | 'implicit';
export type DataMode = 'epsv' | 'pasv' | 'active';
export const DATA_MODES: readonly DataMode[] = ['epsv', 'pasv', 'active'];

export interface ActiveListen {
  /** Address the agent listens on for the server's connection; default: the control connection's local address. */
  address?: string;
  /** "N-M": ports tried for the listener; default: any free port. */
  ports?: string;
}

export interface FtpSettings {
  preferred_ip_protocol: IpPreference;
  ip_protocol_fallback: boolean;
  username: string;
  /** Resolved by the config loader from password_file or a ${VAR} reference. */
  password?: Secret;
  password_file?: string;
  tls: FtpTlsMode;
  tls_config: TlsSettings;
  data_channel: DataMode[];
  /** Argument of LIST; empty lists the login directory. */
  path?: string;
  /** A canary file fetched with RETR instead of LIST. */
  retrieve?: string;
  pasv_mismatch: 'fail' | 'follow_control_address';
  active_listen?: ActiveListen;
}

export const FTP_DEFAULT_PORT = 21;
export const FTPS_IMPLICIT_PORT = 990;

export const FTP_SETTINGS_SCHEMA: JsonSchema = {
  type: 'object',
  description: 'FTP probe: banner, optional TLS, login, one transfer per data-channel mode, quit.',
  additionalProperties: false,
  properties: {
    ...IP_PROTOCOL_PROPERTIES,
    username: {
      type: 'string',
      minLength: 1,
      maxLength: 256,
      pattern: '^[^\\r\\n]*$',
      description: 'Login name; "anonymous" (the default) logs in anonymously.',
    },
    password_file: {
      type: 'string',
      minLength: 1,
      description: 'File holding the password (trailing newline ignored).',
    },
    password: {
      type: 'string',
      pattern: SECRET_REF_PATTERN,
      description: 'The password as an environment reference, exactly "${VAR}". Inline passwords are rejected.',
    },
    tls: {
      enum: ['none', 'explicit', 'implicit'],
      description:
        'none: plain FTP; explicit: AUTH TLS after the banner, then PBSZ 0 and PROT P; implicit: TLS from the first byte (port 990 by default).',
    },
    tls_config: TLS_CONFIG_SCHEMA,
    data_channel: {
      type: 'array',
      minItems: 1,
      uniqueItems: true,
      items: { enum: ['epsv', 'pasv', 'active'] },
      description:
        'Data-channel modes to test, each reported on its own: epsv (RFC 2428), pasv, active (PORT/EPRT: the server connects back to the agent).',
    },
    path: {
      type: 'string',
      maxLength: 1024,
      pattern: '^[^\\r\\n]*$',
      description: 'Directory (or pattern) to LIST; empty lists the login directory.',
    },
    retrieve: {
      type: 'string',
      minLength: 1,
      maxLength: 1024,
      pattern: '^[^\\r\\n]*$',
      description: 'Canary file to download with RETR instead of LIST; its size and transfer time are reported.',
    },
    pasv_mismatch: {
      enum: ['fail', 'follow_control_address'],
      description:
        'When a PASV reply advertises an address other than the control connection peer: fail without connecting there, or connect to the control peer at the advertised port.',
    },
    active_listen: {
      type: 'object',
      additionalProperties: false,
      description: "The agent's listener for active mode.",
      properties: {
        address: {
          type: 'string',
          description:
            "IP address to listen on and advertise in PORT/EPRT (0.0.0.0 or :: listens everywhere and advertises the control connection's local address); default: the control connection's local address.",
        },
        ports: {
          type: 'string',
          pattern: '^[0-9]{1,5}(-[0-9]{1,5})?$',
          description: 'Port or range "N-M" for the listener (open it in the firewall); default: any free port.',
        },
      },
    },
  },
};

export const FTP_DEFAULTS: FtpSettings = {
  preferred_ip_protocol: 'ip4',
  ip_protocol_fallback: true,
  username: 'anonymous',
  tls: 'none',
  tls_config: {},
  data_channel: ['epsv', 'pasv'],
  pasv_mismatch: 'fail',
};

export function validateFtpSettings(s: FtpSettings): string[] {
  const errors: string[] = [];
  if (s.path !== undefined && s.retrieve !== undefined) {
    errors.push('retrieve: set either path (LIST) or retrieve (RETR), not both');
  }
  if (s.active_listen) {
    if (!s.data_channel.includes('active')) {
      errors.push('active_listen: set, but data_channel does not include active');
    }
    const a = s.active_listen.address;
    if (a !== undefined && net.isIP(a) === 0) {
      errors.push(`active_listen.address: "${a}" is not an IP address`);
    }
    if (s.active_listen.ports !== undefined) {
      const r = parsePortRange(s.active_listen.ports);
      if (typeof r === 'string') errors.push(`active_listen.ports: ${r}`);
    }
  }
  return errors;
}

export function defaultPort(s: Pick<FtpSettings, 'tls'>): number {
  return s.tls === 'implicit' ? FTPS_IMPLICIT_PORT : FTP_DEFAULT_PORT;
}

export function validateFtpAddress(address: string, s: FtpSettings): string | undefined {
  const hp = parseHostPort(address, defaultPort(s));
  return typeof hp === 'string' ? hp : undefined;
}
