export { ftpProber, FTP_METRICS, FTP_PHASES } from './prober';
export { FTP_SETTINGS_SCHEMA, FTP_DEFAULTS, type FtpSettings, type DataMode } from './settings';
export { ReplyParser, parseReplies, type Reply, type ReplyLimits } from './reply';
export { parsePasv, parseEpsv, formatPort, formatEprt, parsePortRange } from './passive';
