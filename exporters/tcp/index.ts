export { tcpProber, TCP_SETTINGS_SCHEMA, type TcpSettings } from './prober';
