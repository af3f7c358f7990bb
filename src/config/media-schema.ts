// The file settings of a wrapped service in mlship.yaml (issue 18): which request fields are
// files, how an image or a sound becomes the model's tensor (`preprocess:`), what the model
// answers (`output:`), its class names and which references the service may fetch.

import { z } from 'zod';

const FIELD = /^[A-Za-z_][A-Za-z0-9_-]{0,63}$/;
const FieldName = z.string().regex(FIELD, { message: 'must be a request field name such as "image"' });

const MEDIA_TYPE = /^[a-z]+\/[a-z0-9.+*-]+$/;

export const FileInputSchema = z
  .strictObject({
    kind: z.enum(['image', 'audio', 'file']).describe('What the field holds.'),
    max_bytes: z
      .number()
      .int()
      .min(1024)
      .max(1024 * 1024 * 1024)
      .optional()
      .describe('Largest file accepted (413 above it, before it is read whole). Default 10 MiB.'),
    accept: z
      .array(z.string().regex(MEDIA_TYPE, { message: 'must be a media type such as "image/png"' }))
      .min(1)
      .optional()
      .describe('Media types accepted (415 otherwise). Default: PNG, JPEG, WebP for images; WAV for audio.'),
  })
  .describe('A file field of the request: multipart part, base64 in JSON, or an allow-listed reference.');

/** "WxH" (e.g. "224x224") or one number for a square. */
const Size = z
  .union([
    z.number().int().min(1).max(16384),
    z.string().regex(/^\d{1,5}x\d{1,5}$/, { message: 'must be "WxH" such as "224x224", or one number' }),
  ])
  .describe('Size the model takes: "WxH" (e.g. "224x224") or one number for a square.');

/** A number, or a fraction written "1/255". */
const Ratio = z.union([
  z.number().positive(),
  z
    .string()
    .regex(/^\d+(\.\d+)?\/\d+(\.\d+)?$/, { message: 'must be a number or a fraction such as "1/255"' }),
]);

export const PreprocessSchema = z
  .strictObject({
    resize: z
      .enum(['stretch', 'crop', 'letterbox'])
      .optional()
      .describe(
        'stretch to the size, crop the centre after scaling the short side, or letterbox (fit and pad).',
      ),
    size: Size.optional(),
    channels: z.enum(['RGB', 'BGR', 'L']).optional().describe('Channel order the model takes (L: grey).'),
    layout: z.enum(['NCHW', 'NHWC']).optional().describe('Tensor layout the model takes.'),
    scale: Ratio.optional().describe('Pixel values 0..255 are multiplied by it ("1/255" → 0..1).'),
    mean: z.array(z.number()).min(1).max(4).optional().describe('Per channel, subtracted after scale.'),
    std: z
      .array(z.number().positive())
      .min(1)
      .max(4)
      .optional()
      .describe('Per channel, divided by after mean.'),
    dtype: z.enum(['float32', 'float16', 'uint8']).optional().describe('Element type of the tensor.'),
    sample_rate: z
      .number()
      .int()
      .min(1000)
      .max(384_000)
      .optional()
      .describe('Audio: the rate the model takes (422 otherwise).'),
    max_seconds: z
      .number()
      .positive()
      .max(3600)
      .optional()
      .describe('Audio: longest sound accepted (422 above).'),
  })
  .superRefine((p, ctx) => {
    const audio = p.sample_rate !== undefined || p.max_seconds !== undefined;
    const image = ['resize', 'size', 'channels', 'layout', 'scale', 'mean', 'std'].some(
      (k) => p[k as keyof typeof p] !== undefined,
    );
    if (audio && image) {
      ctx.addIssue({
        code: 'custom',
        message: 'mixes image settings with audio ones (sample_rate, max_seconds): one field is one kind',
      });
    }
    const channels = p.channels === 'L' ? 1 : 3;
    for (const key of ['mean', 'std'] as const) {
      const v = p[key];
      if (v && v.length !== channels && v.length !== 1) {
        ctx.addIssue({
          code: 'custom',
          path: [key],
          message: `has ${v.length} values for ${channels} channel(s) (${p.channels ?? 'RGB'}): give ${channels} (or one for all)`,
        });
      }
    }
    if ((p.mean === undefined) !== (p.std === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: [p.mean ? 'std' : 'mean'],
        message: 'mean and std go together: give both',
      });
    }
  })
  .describe('How a decoded file becomes one sample of the model input (generated into app/media.py).');

export const OutputSchema = z
  .union([
    z.enum(['json', 'image']),
    z.strictObject({
      kind: z.enum(['json', 'image']),
      layout: z
        .enum(['NCHW', 'NHWC'])
        .optional()
        .describe('Layout of an image output (default: as the input).'),
      scale: Ratio.optional().describe('Output values are multiplied by it to get 0..255 (255 for 0..1).'),
    }),
  ])
  .describe('What the model answers: json (default), or image (answered as image/png, JPEG/WebP by Accept).');

export const FetchPrefix = z
  .string()
  .regex(/^(s3:\/\/[a-z0-9][a-z0-9.-]{1,62}\/|https:\/\/[A-Za-z0-9.-]+(:\d+)?\/)\S*$/, {
    message: 'must be an s3://bucket/ or https://host/ prefix (ending with "/" after the bucket or host)',
  });

/** The keys ServiceSchema takes for file inputs and outputs. */
export const mediaServiceFields = {
  inputs: z
    .record(FieldName, FileInputSchema)
    .optional()
    .describe('File fields of the request (also declared by "@file" values in the example).'),
  preprocess: z
    .record(FieldName, PreprocessSchema)
    .optional()
    .describe('Per file field: resize, channel order, layout, scale, mean/std, dtype; audio: sample rate.'),
  output: OutputSchema.optional(),
  labels: z
    .union([z.array(z.string().min(1)).min(2), z.string().min(1)])
    .optional()
    .describe('Class names in the order of the model outputs, or a text file with one per line.'),
  fetch_allow: z
    .array(FetchPrefix)
    .optional()
    .describe('s3:// or https:// prefixes the service may fetch a referenced file from (none by default).'),
  max_pixels: z
    .number()
    .int()
    .min(1024)
    .max(1_000_000_000)
    .optional()
    .describe('Largest image decoded (422 above: decompression bombs). Default 40 million pixels.'),
};
