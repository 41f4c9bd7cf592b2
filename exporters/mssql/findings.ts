// What the SQL Server prober tells a person beyond pass or fail: the findings it records, as pure
// functions of what it saw. Codes are stable (diagnose and the status page key on them).
import type { Finding } from '../types';
import type { Advisory } from './versions';
import type { Prelogin } from './prelogin';

/** mssql_patch_advisory from the build's advisory (undefined when the build is fine). */
export function patchAdvisoryFinding(a: Advisory, configuredMinimum: boolean): Finding | undefined {
  if (!a.below) return undefined;
  if (a.refusesRemote) {
    return {
      code: 'mssql_patch_advisory',
      severity: 'critical',
      message: a.message,
      advice:
        'Install SQL Server 2000 Service Pack 4 (8.00.2039); until Service Pack 3 or later is installed, remote clients cannot log in.',
    };
  }
  return {
    code: 'mssql_patch_advisory',
    severity: 'warning',
    message: a.message,
    advice: configuredMinimum
      ? 'Install the latest service pack or cumulative update for this version (min_build in the module states the minimum).'
      : 'Install SQL Server 2000 Service Pack 4 (8.00.2039).',
  };
}

const ENCRYPTION_MEANING: Record<string, string> = {
  off: 'available, not forced: clients choose',
  on: 'on',
  required: 'forced by the server (Force Encryption): clients must encrypt',
  not_supported: 'not supported: the server has no certificate, logins travel unencrypted',
  strict: 'TDS 8 strict: TLS before any TDS byte',
};

/** mssql_encryption: the mode PRELOGIN negotiated (or strict). */
export function encryptionFinding(mode: NonNullable<Prelogin['encryption']> | 'strict'): Finding {
  const f: Finding = {
    code: 'mssql_encryption',
    severity: 'info',
    message: `encryption ${mode}: ${ENCRYPTION_MEANING[mode] ?? mode}`,
  };
  if (mode === 'not_supported') {
    f.advice =
      'Install a certificate for SQL Server (SQL Server Configuration Manager, Protocols, Certificate) so that logins are encrypted.';
  }
  return f;
}

const VERIFY_ERRORS: Record<string, string> = {
  DEPTH_ZERO_SELF_SIGNED_CERT: 'self-signed',
  SELF_SIGNED_CERT_IN_CHAIN: 'signed by a self-signed CA the agent does not trust',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'issued by a CA the agent does not know',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'issued by a CA the agent does not know',
  CERT_HAS_EXPIRED: 'expired',
  CERT_NOT_YET_VALID: 'not valid yet',
  ERR_TLS_CERT_ALTNAME_INVALID: 'issued for another name',
};

/** mssql_certificate_untrusted: a credential-less probe saw a certificate that verification rejects. */
export function untrustedCertificateFinding(code: string): Finding {
  const why = VERIFY_ERRORS[code] ? `${VERIFY_ERRORS[code]}, ${code}` : code;
  return {
    code: 'mssql_certificate_untrusted',
    severity: 'warning',
    message: `the server certificate is not trusted (${why}); the version is known from PRELOGIN, so this probe still succeeds`,
    advice:
      'Modules that log in fail with tls_error under this certificate: install one from a CA the clients trust, or set ' +
      'trust_server_certificate: true (self-signed), ca_file (private CA) or server_name (another name) in those modules.',
  };
}
