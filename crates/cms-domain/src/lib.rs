//! The CMS's business rules, pure and free of I/O: aggregates, the commands
//! that change them, the events (past tense) they produce, and validation.

pub mod article;
pub mod author;
pub mod validation;

pub use article::{Article, ArticleCommand, ArticleEvent, ArticleStatus, DraftArticle, EditArticle, ScheduleArticle};
pub use author::{Author, AuthorCommand, AuthorEvent, CreateAuthor, RenameAuthor, UpdateAuthorBio};
pub use validation::{Reason, Rejection};

/// Aggregate type names as written to the outbox and used in topic names.
pub mod aggregate {
    pub const ARTICLE: &str = "article";
    pub const AUTHOR: &str = "author";
}
