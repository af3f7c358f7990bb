// The error a file field is refused with (413, 415 or 422, the field and the reason), in a module
// of its own so that the decoders that need no native package (wav.js) can throw it, and be
// tested on a machine without sharp.

export class MediaError extends Error {
  constructor(status, field, msg) {
    super(`${field}: ${msg}`);
    this.status = status;
    this.field = field;
  }
}
