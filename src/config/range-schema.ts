// The number ranges of a wrapped service's request fields in mlship.yaml (issue 18: "numbers with
// their ranges"): declared ones are limits the service enforces (422 naming the field) unless marked
// `strict: false`; either way the OpenAPI schema publishes them and the front end shows them.

import { z } from 'zod';

const FIELD = /^[A-Za-z_][A-Za-z0-9_-]{0,63}$/;

export const RangeSchema = z
  .union([
    z
      .tuple([z.number(), z.number()])
      .refine(([lo, hi]) => lo <= hi, { message: 'must be [minimum, maximum] with minimum <= maximum' }),
    z
      .strictObject({
        minimum: z.number().optional().describe('Smallest value accepted (inclusive).'),
        maximum: z.number().optional().describe('Largest value accepted (inclusive).'),
        strict: z
          .boolean()
          .default(true)
          .describe('true: a value outside is answered with 422; false: a hint the front end shows.'),
      })
      .refine((r) => r.minimum !== undefined || r.maximum !== undefined, {
        message: 'give minimum, maximum or both',
      })
      .refine((r) => r.minimum === undefined || r.maximum === undefined || r.minimum <= r.maximum, {
        message: 'minimum must not be larger than maximum',
        path: ['minimum'],
      }),
  ])
  .describe('[minimum, maximum] (enforced), or { minimum, maximum, strict: false } for a hint.');

/** The keys ServiceSchema takes for number ranges. */
export const rangeServiceFields = {
  ranges: z
    .record(
      z.string().regex(FIELD, { message: 'must be a request field name such as "threshold"' }),
      RangeSchema,
    )
    .optional()
    .describe('Per number field of the request: its range, enforced (422 outside) unless strict: false.'),
};
