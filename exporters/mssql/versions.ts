// What a SQL Server build number means: product, service pack or cumulative update, and
// whether it is below the build an operator should run. Public build numbers from Microsoft's
// release notes; a build between two known ones is named after the lower one with a "+"
// (a hotfix or GDR on top of it). Pure data and functions.
import type { Version } from './prelogin';

interface Release {
  /** Key of the product: major.minor as the server reports it. */
  product: string;
  builds: readonly (readonly [number, string])[];
}

const RELEASES: Record<string, Release> = {
  '6.50': {
    product: 'SQL Server 6.5',
    builds: [
      [201, 'RTM'],
      [213, 'SP1'],
      [240, 'SP2'],
      [258, 'SP3'],
      [281, 'SP4'],
      [415, 'SP5'],
      [416, 'SP5a'],
    ],
  },
  '7.0': {
    product: 'SQL Server 7.0',
    builds: [
      [623, 'RTM'],
      [699, 'SP1'],
      [842, 'SP2'],
      [961, 'SP3'],
      [1063, 'SP4'],
    ],
  },
  '8.0': {
    product: 'SQL Server 2000',
    builds: [
      [194, 'RTM'],
      [384, 'SP1'],
      [532, 'SP2'],
      [534, 'SP2'],
      [760, 'SP3'],
      [766, 'SP3a'],
      [2039, 'SP4'],
    ],
  },
  '9.0': {
    product: 'SQL Server 2005',
    builds: [
      [1399, 'RTM'],
      [2047, 'SP1'],
      [3042, 'SP2'],
      [4035, 'SP3'],
      [5000, 'SP4'],
    ],
  },
  '10.0': {
    product: 'SQL Server 2008',
    builds: [
      [1600, 'RTM'],
      [2531, 'SP1'],
      [4000, 'SP2'],
      [5500, 'SP3'],
      [6000, 'SP4'],
    ],
  },
  '10.50': {
    product: 'SQL Server 2008 R2',
    builds: [
      [1600, 'RTM'],
      [2500, 'SP1'],
      [4000, 'SP2'],
      [6000, 'SP3'],
    ],
  },
  '11.0': {
    product: 'SQL Server 2012',
    builds: [
      [2100, 'RTM'],
      [3000, 'SP1'],
      [5058, 'SP2'],
      [6020, 'SP3'],
      [7001, 'SP4'],
    ],
  },
  '12.0': {
    product: 'SQL Server 2014',
    builds: [
      [2000, 'RTM'],
      [4100, 'SP1'],
      [5000, 'SP2'],
      [6024, 'SP3'],
    ],
  },
  '13.0': {
    product: 'SQL Server 2016',
    builds: [
      [1601, 'RTM'],
      [4001, 'SP1'],
      [5026, 'SP2'],
      [6300, 'SP3'],
    ],
  },
  '14.0': {
    product: 'SQL Server 2017',
    builds: [
      [1000, 'RTM'],
      [3006, 'CU1'],
      [3008, 'CU2'],
      [3015, 'CU3'],
      [3022, 'CU4'],
      [3023, 'CU5'],
      [3025, 'CU6'],
      [3026, 'CU7'],
      [3029, 'CU8'],
      [3030, 'CU9'],
      [3037, 'CU10'],
      [3038, 'CU11'],
      [3045, 'CU12'],
      [3048, 'CU13'],
      [3076, 'CU14'],
      [3162, 'CU15'],
      [3223, 'CU16'],
      [3238, 'CU17'],
      [3257, 'CU18'],
      [3281, 'CU19'],
      [3294, 'CU20'],
      [3335, 'CU21'],
      [3356, 'CU22'],
      [3381, 'CU23'],
      [3391, 'CU24'],
      [3401, 'CU25'],
      [3411, 'CU26'],
      [3421, 'CU27'],
      [3430, 'CU28'],
      [3436, 'CU29'],
      [3451, 'CU30'],
      [3456, 'CU31'],
    ],
  },
  '15.0': {
    product: 'SQL Server 2019',
    builds: [
      [2000, 'RTM'],
      [4003, 'CU1'],
      [4013, 'CU2'],
      [4023, 'CU3'],
      [4033, 'CU4'],
      [4043, 'CU5'],
      [4053, 'CU6'],
      [4063, 'CU7'],
      [4073, 'CU8'],
      [4102, 'CU9'],
      [4123, 'CU10'],
      [4138, 'CU11'],
      [4153, 'CU12'],
      [4178, 'CU13'],
      [4188, 'CU14'],
      [4198, 'CU15'],
      [4223, 'CU16'],
      [4249, 'CU17'],
      [4261, 'CU18'],
      [4298, 'CU19'],
      [4312, 'CU20'],
      [4316, 'CU21'],
      [4322, 'CU22'],
      [4335, 'CU23'],
      [4345, 'CU24'],
      [4355, 'CU25'],
      [4365, 'CU26'],
      [4375, 'CU27'],
      [4385, 'CU28'],
      [4395, 'CU29'],
      [4405, 'CU30'],
      [4415, 'CU31'],
    ],
  },
  '16.0': {
    product: 'SQL Server 2022',
    builds: [
      [1000, 'RTM'],
      [4003, 'CU1'],
      [4015, 'CU2'],
      [4025, 'CU3'],
      [4035, 'CU4'],
      [4045, 'CU5'],
      [4055, 'CU6'],
      [4065, 'CU7'],
      [4075, 'CU8'],
      [4085, 'CU9'],
      [4095, 'CU10'],
      [4105, 'CU11'],
      [4115, 'CU12'],
      [4125, 'CU13'],
      [4135, 'CU14'],
      [4145, 'CU15'],
      [4165, 'CU16'],
      [4175, 'CU17'],
      [4185, 'CU18'],
    ],
  },
  '17.0': { product: 'SQL Server 2025', builds: [[1000, 'RTM']] },
};

export interface VersionName {
  /** "SQL Server 2019", or "SQL Server (unknown major 18)". */
  product: string;
  /** "CU25", "SP4", "RTM+", or "pre-release" below the first known build. */
  level: string;
  /** Product and level in one string: "SQL Server 2000 SP4". */
  name: string;
  /** True when the build is exactly a known release build. */
  exact: boolean;
}

function releaseKey(v: Pick<Version, 'major' | 'minor'>): string {
  if (v.major === 6) return '6.50';
  if (v.major === 10 && v.minor === 50) return '10.50';
  return `${v.major}.0`;
}

/** Names a build. Pure. */
export function nameVersion(v: Pick<Version, 'major' | 'minor' | 'build'>): VersionName {
  const rel = RELEASES[releaseKey(v)];
  if (!rel) {
    const product = `SQL Server (unknown major ${v.major})`;
    return { product, level: 'unknown', name: product, exact: false };
  }
  let best: readonly [number, string] | undefined;
  for (const b of rel.builds) if (b[0] <= v.build) best = b;
  if (!best) return { product: rel.product, level: 'pre-release', name: `${rel.product} pre-release`, exact: false };
  const exact = best[0] === v.build;
  const level = exact ? best[1] : `${best[1]}+`;
  return { product: rel.product, level, name: `${rel.product} ${level}`, exact };
}

/** "8.00.2039" style text, as SQL Server people write builds. */
export function formatBuild(v: Pick<Version, 'major' | 'minor' | 'build'>): string {
  return `${v.major}.${String(v.minor).padStart(2, '0')}.${v.build}`;
}

export interface Advisory {
  /** True when the build is below what the operator should run. */
  below: boolean;
  /** Why, in the operator's terms (empty when not below). */
  message: string;
  /** SQL Server 2000 before SP3 refuses remote connections. */
  refusesRemote: boolean;
}

/** Minimum builds by major version, from config (`min_build: {"15": "15.0.4355"}`). */
export type MinBuilds = Readonly<Record<string, string>>;

/** Parses "15.0.4355" or "15.00.4355.3" into parts; undefined when malformed. Pure. */
export function parseBuild(s: string): Version | undefined {
  const m = /^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,5})(?:\.([0-9]{1,5}))?$/.exec(s.trim());
  if (!m) return undefined;
  const [major, minor, build, subbuild] = [m[1], m[2], m[3], m[4] ?? '0'].map(Number);
  if (major > 255 || minor > 255 || build > 65535 || subbuild > 65535) return undefined;
  return { major, minor, build, subbuild };
}

function lessThan(a: Version, b: Version): boolean {
  if (a.major !== b.major) return a.major < b.major;
  if (a.minor !== b.minor) return a.minor < b.minor;
  if (a.build !== b.build) return a.build < b.build;
  return a.subbuild < b.subbuild;
}

/**
 * The patch advisory: SQL Server 2000 below 8.00.760 (SP3) refuses remote connections, below
 * 8.00.2039 it should get SP4; any major with a configured minimum build is checked against it.
 */
export function advise(v: Version, minBuilds: MinBuilds = {}): Advisory {
  const min = minBuilds[String(v.major)];
  if (min !== undefined) {
    const m = parseBuild(min);
    if (m && lessThan(v, m)) {
      return {
        below: true,
        message: `build ${formatVersionFull(v)} is below the configured minimum ${min} for ${nameVersion(v).product}: install the latest cumulative update`,
        refusesRemote: v.major === 8 && v.build < 760,
      };
    }
  }
  if (v.major === 8 && v.minor === 0) {
    if (v.build < 760) {
      return {
        below: true,
        message: `SQL Server 2000 build ${formatBuild(v)} is below 8.00.760: remote connections are refused until Service Pack 3 or later is installed (apply SP4, 8.00.2039)`,
        refusesRemote: true,
      };
    }
    if (v.build < 2039) {
      return {
        below: true,
        message: `SQL Server 2000 build ${formatBuild(v)} is below 8.00.2039: apply Service Pack 4`,
        refusesRemote: false,
      };
    }
  }
  return { below: false, message: '', refusesRemote: false };
}

function formatVersionFull(v: Version): string {
  return `${v.major}.${v.minor}.${v.build}.${v.subbuild}`;
}
