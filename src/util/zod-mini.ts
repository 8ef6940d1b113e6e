/**
 * zod's mini build, for the schemas of the modules the one-shot commands
 * (inspect, verify, attenuate; fast-path.ts) load: the same core, the same
 * checks and issue messages, but no methods bound onto every schema as it is
 * built. Classic zod did that ~90 times before each `mintfs verify` read its
 * words (~6 ms of a ~60 ms start in a --cpu-prof); a bundle of the same
 * schemas started ~11 ms sooner with mini (40 paired runs). Elsewhere classic
 * zod is used as before; a mini schema nests in a classic one (one core).
 *
 * Mini alone leaves messages to the locale configured: English is set here,
 * as classic zod sets it on its first schema, so a value refused reads the
 * same whichever build made the schema. Import zod/mini from here, as a
 * namespace (`import * as z from '../util/zod-mini.js'`): the bundler then
 * keeps only what is used (handed on as one object, zod/mini brought every
 * locale it has into the one-shot bundle).
 */
import { config } from 'zod/mini';
import en from 'zod/v4/locales/en.js';

// Only where no locale is set yet: classic zod's default is the same, and an explicit choice wins.
if (config().localeError === undefined) config(en());

export * from 'zod/mini';
