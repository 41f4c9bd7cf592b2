export { socketsCollector, SocketsCollector, resolveSource, type ScanDetails } from './collector';
export { SOCKETS_SETTINGS_SCHEMA, SOCKETS_DEFAULTS, type SocketsSettings, type ListenerExpectation } from './settings';
export { SOCKETS_METRICS } from './metrics';
export { parseProcNet, ProcNetParser, decodeProcAddress, formatIPv6, portClass, type Listener } from './procnet';
