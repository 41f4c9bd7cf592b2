// How refusals to data-channel commands map to reasons: the table the live tests sample, in full.
import { dataFailure } from '../../exporters/ftp/advice';
import type { Reply } from '../../exporters/ftp/reply';

const reply = (code: number, text = 'no'): Reply => ({ code, lines: [text] });

test.each([500, 501, 502, 504, 550])(
  'PORT and EPRT refused with %i → active_disabled, remedy on the server',
  (code) => {
    for (const verb of ['PORT', 'EPRT']) {
      const e = dataFailure(verb, reply(code), 'active', 'none');
      expect({ verb, reason: e.reason }).toEqual({ verb, reason: 'active_disabled' });
      expect(e.advice).toMatch(/vsftpd port_enable=YES/);
    }
  },
);

test('EPRT 522 (address family not supported) is active_disabled, not a TLS demand', () => {
  expect(dataFailure('EPRT', reply(522, 'Network protocol not supported, use (1)'), 'active', 'none').reason).toBe(
    'active_disabled',
  );
  expect(dataFailure('PBSZ', reply(522), 'epsv', 'none').reason).toBe('tls_required');
});

test('425 to the transfer command: active_refused in active mode, pasv_unreachable in passive modes', () => {
  expect(dataFailure('LIST', reply(425), 'active', 'none').reason).toBe('active_refused');
  expect(dataFailure('LIST', reply(425), 'epsv', 'none').reason).toBe('pasv_unreachable');
  expect(dataFailure('PORT', reply(425), 'active', 'none').reason).toBe('active_refused');
});

test('EPSV or PASV not implemented stays a protocol error with the advice to drop the mode', () => {
  const e = dataFailure('EPSV', reply(502), 'epsv', 'none');
  expect(e.reason).toBe('protocol_error');
  expect(e.advice).toContain('remove epsv from data_channel');
});
