// Device names -> onnxruntime execution providers, with errors that say how to get a missing provider.

import * as ort from 'onnxruntime-node';
import { KvlensUsageError } from '../util/errors.js';

export const DEVICES = ['cpu', 'cuda', 'webgpu'] as const;
export type Device = (typeof DEVICES)[number];

export function parseDevice(s: string): Device {
  if ((DEVICES as readonly string[]).includes(s)) return s as Device;
  throw new KvlensUsageError(`unknown device "${s}": use one of ${DEVICES.join(', ')}`);
}

/** What to tell a user whose provider failed to initialise. */
export function providerHelp(device: Device): string {
  switch (device) {
    case 'cuda':
      return 'the CUDA execution provider is not bundled in the onnxruntime-node npm package. It needs ' +
        'libonnxruntime_providers_cuda.so and libonnxruntime_providers_shared.so (NuGet package Microsoft.ML.OnnxRuntime.Gpu.Linux, ' +
        'fetched by onnxruntime-node\'s install script when network access is allowed: reinstall without ONNXRUNTIME_NODE_INSTALL=skip / ' +
        'onnxruntime-node-install=skip) placed next to libonnxruntime.so.1 in node_modules/onnxruntime-node/bin/napi-v6/linux/x64/, plus CUDA 12 and cuDNN 9 ' +
        'runtime libraries on the library path and an NVIDIA GPU.';
    case 'webgpu':
      return 'the WebGPU execution provider is built into onnxruntime-node but needs a GPU with a Vulkan driver: install a Vulkan loader ' +
        '(Debian/Ubuntu: apt-get install libvulkan1) and the GPU vendor\'s Vulkan ICD (e.g. the NVIDIA driver\'s, or mesa-vulkan-drivers). ' +
        'Software Vulkan (lavapipe) is rejected by Dawn.';
    case 'cpu':
      return 'the CPU provider ships with onnxruntime-node; a failure here means the native binding did not load (reinstall onnxruntime-node).';
  }
}

export function executionProviders(device: Device): ort.InferenceSession.ExecutionProviderConfig[] {
  return [device];
}

/** Wrap a provider-initialisation failure in an actionable error. */
export function deviceError(device: Device, cause: unknown): Error {
  const msg = cause instanceof Error ? cause.message : String(cause);
  return new KvlensUsageError(`device "${device}" is not available (${msg.split('\n')[0]}): ${providerHelp(device)}`);
}
