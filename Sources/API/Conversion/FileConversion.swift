import BatchModels
import Bookend

// Node files: a listed file or folder → `BatchNodeFile`.

extension BatchNodeFile {
    /// Folders carry no `properties`; Bookend serves every file as bytes.
    init(_ file: NodeFileInfo, urlPrefix: String) {
        self.init(name: file.name, url: "\(urlPrefix)/\(Wire.escape(file.name))", isDirectory: file.isDirectory)
        if !file.isDirectory {
            properties = FileProperties(
                lastModified: Wire.isoString(file.lastModified), contentLength: String(file.contentLength),
                contentType: "application/octet-stream", fileMode: file.fileMode)
        }
    }
}
