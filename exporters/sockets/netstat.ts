// /proc/net/netstat: pairs of lines, "TcpExt: Name1 Name2 ..." then "TcpExt: 1 2 ...".

export interface ListenQueueCounters {
  /** Times the accept queue of a listener was full (TcpExt ListenOverflows). */
  overflows: number;
  /** SYNs dropped at a listener for any reason, overflows included (TcpExt ListenDrops). */
  drops: number;
}

/** Every "Group: names" / "Group: values" pair as group -> name -> value. Pure. */
export function parseNetstat(text: string): Map<string, Map<string, number>> {
  const out = new Map<string, Map<string, number>>();
  const lines = text.split('\n');
  for (let i = 0; i + 1 < lines.length; i++) {
    const names = lines[i].trim().split(/\s+/);
    const values = lines[i + 1].trim().split(/\s+/);
    const group = names[0];
    if (!group?.endsWith(':') || values[0] !== group || names.length !== values.length) continue;
    const fields = new Map<string, number>();
    for (let k = 1; k < names.length; k++) {
      const v = Number(values[k]);
      if (Number.isFinite(v)) fields.set(names[k], v);
    }
    out.set(group.slice(0, -1), fields);
    i++;
  }
  return out;
}

/** The listen-queue counters, or undefined when the kernel does not export them. Pure. */
export function listenQueueCounters(text: string): ListenQueueCounters | undefined {
  const tcpExt = parseNetstat(text).get('TcpExt');
  const overflows = tcpExt?.get('ListenOverflows');
  const drops = tcpExt?.get('ListenDrops');
  if (overflows === undefined || drops === undefined) return undefined;
  return { overflows, drops };
}
