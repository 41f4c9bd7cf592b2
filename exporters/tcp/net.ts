// Transitional, removed after the mssql split lands: exporters/mssql still imports these from
// here. The network toolkit is exporters/net/.
export {
  IP_PROTOCOL_PROPERTIES,
  TLS_METRICS,
  connectTcp,
  parseHostPort,
  recordTls,
  resolveHost,
  startTls,
  type IpPreference,
} from '../net';
