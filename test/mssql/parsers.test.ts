import { MessageFramer, encodeMessage, encodePacket, parsePacketHeader } from '../../exporters/mssql/packet';
import {
  Encrypt,
  PreloginOption,
  buildPrelogin,
  encodePreloginOptions,
  formatVersion,
  instanceValidity,
  parsePrelogin,
} from '../../exporters/mssql/prelogin';
import { buildUcastInst, findInstance, parseRespData, parseSvrResp } from '../../exporters/mssql/browser';

const hex = (s: string): Buffer => Buffer.from(s.replace(/[^0-9a-fA-F]/g, ''), 'hex');

// MS-TDS 4.1 "Pre-Login Request": the complete packet, header included.
const SPEC_PRELOGIN = hex(`12 01 00 2F 00 00 01 00 00 00 1A 00 06 01 00 20
  00 01 02 00 21 00 01 03 00 22 00 04 04 00 26 00
  01 FF 09 00 00 00 00 00 01 00 B8 0D 00 00 01`);

describe('TDS packet header', () => {
  test('spec example header', () => {
    const h = parsePacketHeader(SPEC_PRELOGIN);
    expect(h).toEqual({
      ok: true,
      header: { type: 0x12, status: 1, length: 0x2f, spid: 0, packetId: 1, window: 0 },
    });
  });
  test('short, unknown type, lying lengths', () => {
    expect(parsePacketHeader(Buffer.from([0x12, 1, 0]))).toMatchObject({ ok: false, error: /short packet header/ });
    expect(parsePacketHeader(Buffer.from('SSH-2.0-OpenSSH_9.2\r\n'))).toMatchObject({
      ok: false,
      error: /unknown TDS packet type 0x53/,
    });
    expect(parsePacketHeader(hex('04 01 00 04 00 00 01 00'))).toMatchObject({
      ok: false,
      error: /shorter than its own header/,
    });
    expect(parsePacketHeader(hex('04 01 FF FF 00 00 01 00'), 4096)).toMatchObject({
      ok: false,
      error: /exceeds the limit of 4096/,
    });
  });
  test('framer reassembles a message split across packets and chunks', () => {
    const payload = Buffer.alloc(10000, 7);
    const packets = encodeMessage(0x04, payload, 512);
    expect(packets.length).toBe(Math.ceil(10000 / 504));
    const wire = Buffer.concat(packets);
    const f = new MessageFramer();
    for (let i = 0; i < wire.length; i += 37) f.push(wire.subarray(i, i + 37));
    const m = f.shift();
    expect(m?.type).toBe(0x04);
    expect(m?.payload.equals(payload)).toBe(true);
    expect(f.shift()).toBeUndefined();
    expect(f.error).toBeUndefined();
  });
  test('framer caps the message size and refuses a type change mid-message', () => {
    const f = new MessageFramer({ maxPacketBytes: 4096, maxMessageBytes: 1000 });
    f.push(Buffer.concat(encodeMessage(0x04, Buffer.alloc(2000), 512)));
    expect(f.error).toMatch(/exceeds the limit of 1000/);
    const g = new MessageFramer();
    g.push(encodePacket(0x04, Buffer.from([1]), { eom: false }));
    g.push(encodePacket(0x12, Buffer.from([1])));
    expect(g.error).toMatch(/type changed/);
  });
  test('a length claiming more than arrives stays pending, it does not complete', () => {
    const f = new MessageFramer();
    f.push(hex('04 01 10 00 00 00 01 00 AA BB'));
    expect(f.shift()).toBeUndefined();
    expect(f.error).toBeUndefined();
    expect(f.pendingBytes).toBe(10);
  });
});

describe('PRELOGIN', () => {
  test('MS-TDS 4.1 worked example', () => {
    const r = parsePrelogin(SPEC_PRELOGIN.subarray(8));
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const p = r.prelogin;
    expect(p.version).toEqual({ major: 9, minor: 0, build: 0, subbuild: 0 });
    expect(p.encryption).toBe('on');
    expect(instanceValidity(p)).toBe('valid');
    expect(p.threadId).toBe(0xb80d0000);
    expect(p.mars).toBe(true);
    expect(p.tokens).toEqual([0, 1, 2, 3, 4]);
  });
  test('a server answer: SQL Server 2000 SP3, encryption required, instance invalid, fedauth', () => {
    const ver = hex('08 00 02 F8 00 00'); // 8.0.760
    const payload = encodePreloginOptions([
      [PreloginOption.VERSION, ver],
      [PreloginOption.ENCRYPTION, Buffer.from([Encrypt.REQ])],
      [PreloginOption.INSTOPT, Buffer.from([1])],
      [PreloginOption.THREADID, Buffer.alloc(0)],
      [PreloginOption.MARS, Buffer.from([0])],
      [PreloginOption.FEDAUTHREQUIRED, Buffer.from([1])],
    ]);
    const r = parsePrelogin(payload);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(formatVersion(r.prelogin.version!)).toBe('8.0.760.0');
    expect(r.prelogin.encryption).toBe('required');
    expect(instanceValidity(r.prelogin)).toBe('invalid');
    expect(r.prelogin.threadId).toBeUndefined();
    expect(r.prelogin.mars).toBe(false);
    expect(r.prelogin.fedAuthRequired).toBe(true);
  });
  test.each([
    [Encrypt.OFF, 'off'],
    [Encrypt.ON, 'on'],
    [Encrypt.NOT_SUP, 'not_supported'],
    [Encrypt.REQ, 'required'],
    [0x83, 'required'],
  ])('encryption byte %d -> %s', (b, name) => {
    const r = parsePrelogin(buildPrelogin({ encryption: b }));
    expect(r.ok && r.prelogin.encryption).toBe(name);
  });
  test('build round trip: 16.0.4135.4', () => {
    const r = parsePrelogin(buildPrelogin({ version: { major: 16, minor: 0, build: 4135, subbuild: 4 } }));
    expect(r.ok && formatVersion(r.prelogin.version!)).toBe('16.0.4135.4');
  });
  test('malformed answers are error values', () => {
    expect(parsePrelogin(Buffer.alloc(0))).toMatchObject({ ok: false, error: /no terminator/ });
    expect(parsePrelogin(hex('FF'))).toMatchObject({ ok: false, error: /empty/ });
    expect(parsePrelogin(hex('01 00 06 00 01 FF 00'))).toMatchObject({
      ok: false,
      error: /first option is not VERSION/,
    });
    expect(parsePrelogin(hex('00 00 06 00 06 FF 09 00'))).toMatchObject({ ok: false, error: /points outside/ });
    expect(parsePrelogin(hex('00 00 00 00 06 FF'))).toMatchObject({ ok: false, error: /points outside/ });
    expect(parsePrelogin(hex('00 00 0B 00 06 00 00 0B 00 06 FF'))).toMatchObject({ ok: false, error: /twice/ });
    expect(parsePrelogin(hex('00 00 0B 00 02 FF 09 00'))).toMatchObject({ ok: false, error: /VERSION is 2 bytes/ });
    expect(parsePrelogin(hex('00 00 0B'))).toMatchObject({ ok: false, error: /cut short/ });
    const badEnc = encodePreloginOptions([
      [0, Buffer.alloc(6)],
      [1, Buffer.from([0x09])],
    ]);
    expect(parsePrelogin(badEnc)).toMatchObject({ ok: false, error: /unknown ENCRYPTION value 0x9/ });
  });
});

// MC-SQLR 4.1: CLNT_UCAST_EX answer listing three instances.
const SPEC_UCAST_EX = hex(`05 47 01 53 65 72 76 65 72 4e 61 6d 65 3b 49 4c
53 55 4e 47 31 3b 49 6e 73 74 61 6e 63 65 4e 61 6d 65 3b 59 55 4b 4f 4e 53 54 44 3b 49 73 43 6c
75 73 74 65 72 65 64 3b 4e 6f 3b 56 65 72 73 69 6f 6e 3b 39 2e 30 30 2e 31 33 39 39 2e 30 36 3b
74 63 70 3b 35 37 31 33 37 3b 3b 53 65 72 76 65 72 4e 61 6d 65 3b 49 4c 53 55 4e 47 31 3b 49 6e
73 74 61 6e 63 65 4e 61 6d 65 3b 59 55 4b 4f 4e 44 45 56 3b 49 73 43 6c 75 73 74 65 72 65 64 3b
4e 6f 3b 56 65 72 73 69 6f 6e 3b 39 2e 30 30 2e 31 33 39 39 2e 30 36 3b 6e 70 3b 5c 5c 49 4c 53
55 4e 47 31 5c 70 69 70 65 5c 4d 53 53 51 4c 24 59 55 4b 4f 4e 44 45 56 5c 73 71 6c 5c 71 75 65
72 79 3b 3b 53 65 72 76 65 72 4e 61 6d 65 3b 49 4c 53 55 4e 47 31 3b 49 6e 73 74 61 6e 63 65 4e
61 6d 65 3b 4d 53 53 51 4c 53 45 52 56 45 52 3b 49 73 43 6c 75 73 74 65 72 65 64 3b 4e 6f 3b 56
65 72 73 69 6f 6e 3b 39 2e 30 30 2e 31 33 39 39 2e 30 36 3b 74 63 70 3b 31 34 33 33 3b 6e 70 3b
5c 5c 49 4c 53 55 4e 47 31 5c 70 69 70 65 5c 73 71 6c 5c 71 75 65 72 79 3b 3b`);

const SPEC_UCAST_INST = hex(`05 58 00 53 65 72 76 65 72 4e 61 6d 65 3b 49 4c
53 55 4e 47 31 3b 49 6e 73 74 61 6e 63 65 4e 61 6d 65 3b 59 55 4b 4f 4e 53 54 44 3b 49 73 43 6c
75 73 74 65 72 65 64 3b 4e 6f 3b 56 65 72 73 69 6f 6e 3b 39 2e 30 30 2e 31 33 39 39 2e 30 36 3b
74 63 70 3b 35 37 31 33 37 3b 3b`);

describe('Browser SVR_RESP', () => {
  test('MC-SQLR 4.1 CLNT_UCAST_EX example: three instances', () => {
    expect(SPEC_UCAST_EX.readUInt16LE(1)).toBe(SPEC_UCAST_EX.length - 3);
    const r = parseSvrResp(SPEC_UCAST_EX);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.skipped).toEqual([]);
    expect(r.instances.map((i) => [i.instanceName, i.tcpPort, i.pipe])).toEqual([
      ['YUKONSTD', 57137, undefined],
      ['YUKONDEV', undefined, '\\\\ILSUNG1\\pipe\\MSSQL$YUKONDEV\\sql\\query'],
      ['MSSQLSERVER', 1433, '\\\\ILSUNG1\\pipe\\sql\\query'],
    ]);
    expect(r.instances[0]).toMatchObject({ serverName: 'ILSUNG1', isClustered: false, version: '9.00.1399.06' });
    expect(findInstance(r.instances, 'yukondev')?.instanceName).toBe('YUKONDEV');
  });
  test('MC-SQLR 4.2 CLNT_UCAST_INST example and request', () => {
    expect(buildUcastInst('YUKONSTD').equals(hex('04 59 55 4b 4f 4e 53 54 44 00'))).toBe(true);
    const r = parseSvrResp(SPEC_UCAST_INST);
    expect(r.ok && r.instances).toEqual([
      {
        serverName: 'ILSUNG1',
        instanceName: 'YUKONSTD',
        isClustered: false,
        version: '9.00.1399.06',
        tcpPort: 57137,
        other: {},
      },
    ]);
  });
  test('truncated reply keeps the complete records', () => {
    const cut = SPEC_UCAST_EX.subarray(0, 200);
    const r = parseSvrResp(cut);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.instances.map((i) => i.instanceName)).toEqual(['YUKONSTD']);
    expect(r.skipped).toEqual(['truncated record']);
    expect(parseSvrResp(SPEC_UCAST_INST.subarray(0, 40))).toMatchObject({ ok: false });
  });
  test('empty fields, transports and bad records', () => {
    const r = parseRespData(
      'ServerName;;InstanceName;;IsClustered;;Version;;;;ServerName;H;InstanceName;B;IsClustered;Yes;Version;16.0.1000.6;via;H,0:1433;bv;i;g;i;g;o;tcp;2433;;',
    );
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.instances[0]).toMatchObject({ serverName: '', instanceName: '', version: '' });
    expect(r.instances[1]).toMatchObject({
      instanceName: 'B',
      isClustered: true,
      tcpPort: 2433,
      other: { via: 'H,0:1433', bv: 'i;g;i;g;o' },
    });
    expect(parseRespData('ServerName;H;InstanceName;X;Version;1;tcp;99999;;')).toMatchObject({
      ok: false,
      error: /not a port/,
    });
    expect(parseRespData('ServerName;H;Version;1;;')).toMatchObject({ ok: false, error: /without InstanceName/ });
    expect(parseRespData('')).toEqual({ ok: true, instances: [], skipped: [] });
    expect(parseSvrResp(hex('05 00'))).toMatchObject({ ok: false, error: /shorter/ });
    expect(parseSvrResp(hex('06 00 00'))).toMatchObject({ ok: false, error: /not SVR_RESP/ });
  });
});
