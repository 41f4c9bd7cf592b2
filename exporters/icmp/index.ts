export { icmpProber, pingRung, validateIcmpAddress, ICMP_DEFAULTS, ICMP_METRICS, type IcmpSettings } from './prober';
export { parsePingOutput, classifyPingError, type PingSummary, type PingError } from './parse';
