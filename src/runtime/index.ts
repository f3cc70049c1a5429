export { OrtSession, commonDir, toOrt, fromOrt, type SessionOptions } from './session.js';
export { DEVICES, parseDevice, providerHelp, deviceError, type Device } from './device.js';
