export { OrtSession, commonDir, toOrt, fromOrt, type SessionOptions } from './session.js';
export { DEVICES, parseDevice, providerHelp, deviceError, type Device } from './device.js';
export { startRecording, measured, measuredSync, sumSpans, counters, spanBetween, type Span, type Recording, type Counters } from './stats.js';
