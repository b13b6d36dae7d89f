//! The XML stream codec shared by the client and the server roles.
