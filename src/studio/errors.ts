// Errors the studio reports to a client: an HTTP status, a message, and the request field at fault (400s name
// the field, as the issue asks).
import { AlignkitError } from '../tensor/errors.ts';

export class StudioError extends AlignkitError {
  constructor(
    readonly status: 400 | 401 | 403 | 404 | 409 | 413 | 422,
    message: string,
    /** The request field at fault (`ratings.helpfulness`), or null. */
    readonly field: string | null = null,
  ) {
    super(message);
  }
}

export const badRequest = (field: string | null, message: string): StudioError => new StudioError(400, field === null ? message : `${field}: ${message}`, field);
export const notFound = (what: string): StudioError => new StudioError(404, `${what} not found`);
export const conflict = (message: string): StudioError => new StudioError(409, message);
