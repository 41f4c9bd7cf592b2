// Transitional, removed after the mssql split lands: exporters/mssql still imports the parser from
// here. The one duration parser is exporters/duration.ts.
export { parseDuration } from '../exporters/duration';
