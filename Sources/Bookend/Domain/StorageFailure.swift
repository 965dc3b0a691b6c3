import Foundation
import SQLite

extension BookendError {
    /// The answer for a request that failed because the database could not be written (a full disk,
    /// a file system remounted read-only), or nil for any other failure.
    ///
    /// Why not the generic 500: a full disk is the machine's condition, not a bug, and clients should
    /// learn both that nothing was stored and that trying again later is right. `ServerBusy` (503) is
    /// the Batch code clients already retry with back-off, and the message names the cause, which a
    /// bare `InternalError` did not: one task filling the disk made every write answer 500 without a
    /// word about space.
    public static func storage(_ error: any Error) -> BookendError? {
        guard let error = error as? SQLiteError else { return nil }
        let ioFull = error.isIOError && (error.message.contains("No space left") || error.message.contains("disk is full"))
        if error.isFull || ioFull {
            return BookendError(.internalError, "ServerBusy",
                "The server's disk is full: nothing of this request was stored. Free space on the file system of the data directory, then retry.")
        }
        if error.isReadOnly {
            return BookendError(.internalError, "ServerBusy",
                "The server cannot write its database (its file system is read-only): nothing of this request was stored. Retry once it is writable again.")
        }
        return nil
    }
}
