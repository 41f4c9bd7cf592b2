// What every prober that goes over the network shares: addresses and resolution, TCP connects,
// TLS, a capped line reader, Node's bare TCP handle and the arrival stamps of the native addon.
export * from './address';
export * from './connect';
export * from './tls';
export * from './lines';
export * from './read-queue';
export {
  arrivalAddon,
  arrivalStampsEnabled,
  setArrivalStamps,
  watchedHandle,
  watchedSocket,
  ArrivalWatch,
} from './arrival';
export { nodeTcpBinding, type TcpBinding, type TcpHandle } from './node-tcp';
