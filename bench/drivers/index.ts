// The client driver of each target.
import type { TargetName } from '../types.js';
import type { Connect } from './driver.js';
import { connectParley } from './parley.js';
import { connectParleyMqtt } from './parley-mqtt.js';
import { connectSocketIo } from './socketio.js';
import { connectChatService } from './chat-service.js';
import { connectRelay } from './ws-relay.js';

export const drivers: Record<TargetName, Connect> = {
  parley: connectParley,
  'parley-mqtt': connectParleyMqtt,
  socketio: connectSocketIo,
  'chat-service': connectChatService,
  'ws-relay': connectRelay,
};
