/**
 * Where a tar-diff applier reads old bytes from (spec oci-delta §3.2, and the Rust crate's
 * DeltaDataSource: select file, read exact, seek, read whole, copy n). The applier keeps the
 * current file and position itself and only asks for positional reads, so one source can serve
 * several layers applied in parallel.
 */
export interface DataSource {
  /**
   * Opens the file with this already-cleaned merged-rootfs name (relative, '/'-separated bytes,
   * spec oci-delta §2.3). Throws OdhError('NOT_FOUND' | 'UNSAFE_PATH' | …) naming the file.
   */
  open(name: Buffer): Promise<DataSourceFile>;
}

export interface DataSourceFile {
  /** The cleaned name it was opened with, for error messages. */
  readonly name: string;
  /** Size in bytes at open time. */
  readonly size: number;
  /**
   * Reads up to `length` bytes at absolute `position` into `buf[offset..]`; returns the count read
   * (0 at or past end of file). Never changes any shared file offset.
   */
  readAt(buf: Buffer, offset: number, length: number, position: number): Promise<number>;
  close(): Promise<void>;
}
