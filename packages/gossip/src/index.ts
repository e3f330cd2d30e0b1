// Filled in by the work on this package's issue.

export * from './negentropy.js';
