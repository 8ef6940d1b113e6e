/** Where metrics are served: HOST:PORT with an IP address (or localhost), port 0 for any free one. */
import * as z from 'zod';

export const MetricsAddress = z
  .string()
  .regex(
    /^(\[[0-9a-fA-F:]+\]|[0-9.]+|localhost):[0-9]{1,5}$/,
    'is not HOST:PORT with an IP address or localhost, such as 127.0.0.1:9464',
  );
