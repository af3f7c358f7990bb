// The probe that asks an image's frameworks what they were built for: torch's CUDA
// version and architecture list, TensorFlow's build info, ONNX Runtime's CUDA version.
// Run at build time (no GPU there: torch.cuda.get_arch_list() is empty without one, so
// the compiled list is read from torch._C) or in a container of any image (doctor --image).
// It prints one JSON object: {"frameworks": [{name, version, cuda, archs}]}.

export const GPU_PROBE_FILE = '/opt/mlship/gpu-probe.json';
export const GPU_PROBE_SCRIPT_FILE = '/opt/mlship/gpu_probe.py';

export const GPU_PROBE_SCRIPT: readonly string[] = [
  '# mlship: what the frameworks in this image were built for (read without a GPU)',
  'import json',
  'import sys',
  '',
  '# The working directory first, as for the example: a framework vendored in the repo counts.',
  'sys.path.insert(0, "")',
  'found = []',
  'try:',
  '    import torch',
  '    archs = list(torch.cuda.get_arch_list())',
  '    if not archs and torch.version.cuda:',
  '        flags = getattr(torch._C, "_cuda_getArchFlags", None)',
  '        archs = (flags() or "").split() if flags else []',
  '    found.append({"name": "torch", "version": torch.__version__, "cuda": torch.version.cuda, "archs": archs})',
  'except Exception:',
  '    pass',
  'try:',
  '    import tensorflow as tf',
  '    info = tf.sysconfig.get_build_info()',
  '    found.append({"name": "tensorflow", "version": tf.__version__, "cuda": info.get("cuda_version"), "archs": list(info.get("cuda_compute_capabilities") or [])})',
  'except Exception:',
  '    pass',
  'try:',
  '    import onnxruntime as ort',
  '    cuda = getattr(getattr(ort.capi, "build_and_package_info", None), "cuda_version", None)',
  '    found.append({"name": "onnxruntime", "version": ort.__version__, "cuda": cuda or None, "archs": []})',
  'except Exception:',
  '    pass',
  'print(json.dumps({"frameworks": found}))',
];

/** The probe as a program text (for `python -c`). */
export function gpuProbeProgram(): string {
  return `${GPU_PROBE_SCRIPT.join('\n')}\n`;
}
