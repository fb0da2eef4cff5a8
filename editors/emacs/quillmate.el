;;; quillmate.el --- Write with quillmate: ghost-text continuations, rewrites, provenance  -*- lexical-binding: t; -*-

;; Author: The quillmate authors
;; Version: 0.1.0
;; Package-Requires: ((emacs "27.1"))
;; Keywords: wp, convenience

;;; Commentary:

;; `quillmate-mode' talks to `quillmate lsp' (see editors/PROTOCOL.md in the
;; quillmate sources) over its own small JSON-RPC client: no eglot or lsp-mode
;; needed.  The model's continuation appears as ghost text (an overlay with an
;; `after-string') that grows while the model writes; you take it whole, a word
;; or a line at a time, cycle through alternatives or dismiss it.  What you
;; accept is recorded in the file's co-writing session as the model's words.
;;
;;   (add-to-list 'load-path "/path/to/quillmate/editors/emacs")
;;   (require 'quillmate)
;;   (add-hook 'markdown-mode-hook #'quillmate-mode)
;;   (add-hook 'text-mode-hook #'quillmate-mode)
;;
;; Keys (in `quillmate-mode-map', prefix C-c q): C-c q c continue, C-c q a accept,
;; C-c q w accept a word, C-c q l accept a line, C-c q n / C-c q p next/previous
;; alternative, C-c q o other words the model weighed at a word, C-c q d dismiss, C-c q k cancel, C-c q r rewrite the region,
;; C-c q t template, C-c q b backend, C-c q v provenance, C-c q i info.
;; M-<right> accepts a word and M-<down> a line while ghost text is shown.

;;; Code:

(require 'cl-lib)
(require 'subr-x)

(defgroup quillmate nil
  "Write with quillmate's language server."
  :group 'text
  :prefix "quillmate-")

(defcustom quillmate-command '("quillmate" "lsp")
  "The command that starts quillmate's language server, as a list."
  :type '(repeat string))

(defcustom quillmate-backend nil
  "Backend profile to write with; nil means the default.
The names are those of `quillmate backends list'."
  :type '(choice (const :tag "Default" nil) string))

(defcustom quillmate-model nil
  "Model name or folder for the backend; nil: the profile's model."
  :type '(choice (const :tag "Default" nil) string))

(defcustom quillmate-params nil
  "Generation settings sent to the server, as a plist.
For example (:max_new_tokens 60 :temperature 0.8)."
  :type '(plist :key-type symbol :value-type sexp))

(defcustom quillmate-alternatives 3
  "How many alternatives to ask for when cycling with `quillmate-next'."
  :type 'integer)

(defcustom quillmate-start-timeout 60
  "Seconds to wait for the language server to start."
  :type 'number)

(defface quillmate-suggestion-face
  '((t :inherit shadow))
  "Face of the ghost text.")

;;;; The JSON-RPC client

(defvar quillmate-mode)
(defvar eglot-server-programs)

(defvar quillmate--process nil "The running `quillmate lsp' process.")
(defvar quillmate--ready nil "Non-nil once the server answered initialize.")
(defvar quillmate--pending-input "" "Bytes read from the server not yet parsed.")
(defvar quillmate--next-id 0)
(defvar quillmate--callbacks (make-hash-table) "Request id -> function (result error).")
(defvar quillmate--streams (make-hash-table :test #'equal) "Stream id -> function (params).")
(defvar quillmate--stream-counter 0)
(defvar quillmate--queue nil "Functions to run once the server is ready.")
(defvar-local quillmate--version 0 "The document version the server has (0: not open).")
(defvar-local quillmate--synced-tick nil)

(defun quillmate--send (message)
  "Send MESSAGE, a plist, with its Content-Length header."
  (let ((body (encode-coding-string (json-serialize (append '(:jsonrpc "2.0") message)) 'utf-8)))
    (process-send-string quillmate--process
                         (concat (format "Content-Length: %d\r\n\r\n" (string-bytes body)) body))))

(defun quillmate--filter (_process output)
  "Collect OUTPUT and dispatch every complete message in it."
  (setq quillmate--pending-input (concat quillmate--pending-input output))
  (let (done)
    (while (not done)
      (let ((header-end (string-search "\r\n\r\n" quillmate--pending-input)))
        (if (not header-end)
            (setq done t)
          (let* ((header (substring quillmate--pending-input 0 header-end))
                 (length (and (string-match "Content-Length: *\\([0-9]+\\)" header)
                              (string-to-number (match-string 1 header))))
                 (start (+ header-end 4)))
            (if (or (null length) (< (length quillmate--pending-input) (+ start length)))
                (setq done t)
              (let ((body (substring quillmate--pending-input start (+ start length))))
                (setq quillmate--pending-input (substring quillmate--pending-input (+ start length)))
                (quillmate--dispatch
                 (json-parse-string (decode-coding-string body 'utf-8)
                                    :object-type 'plist :array-type 'list
                                    :null-object nil :false-object nil))))))))))

(defun quillmate--dispatch (message)
  "Handle one MESSAGE from the server."
  (let ((id (plist-get message :id))
        (method (plist-get message :method)))
    (cond
     ((and id (not method))
      (let ((callback (gethash id quillmate--callbacks)))
        (remhash id quillmate--callbacks)
        (when callback
          (funcall callback (plist-get message :result) (plist-get message :error)))))
     ((equal method "quillmate/progress")
      (let* ((params (plist-get message :params))
             (handler (gethash (plist-get params :streamId) quillmate--streams)))
        (when handler (funcall handler params))))
     ((equal method "window/showMessage")
      ;; The server's lines already start with "quillmate: ".
      (let* ((params (plist-get message :params))
             (text (string-remove-prefix "quillmate: " (or (plist-get params :message) ""))))
        (if (eql (plist-get params :type) 1)
            (message "quillmate: %s" (propertize text 'face 'error))
          (message "quillmate: %s" text))))
     ((and id (equal method "workspace/applyEdit"))
      (let ((applied (quillmate--apply-workspace-edit (plist-get (plist-get message :params) :edit))))
        (quillmate--send (list :id id :result (list :applied (if applied t :false))))))
     (id (quillmate--send (list :id id :result :null))))))

(defun quillmate--sentinel (process _event)
  "Forget PROCESS once it has ended."
  (unless (process-live-p process)
    (when (eq process quillmate--process)
      (setq quillmate--process nil quillmate--ready nil quillmate--pending-input "")
      (clrhash quillmate--callbacks)
      (dolist (buffer (buffer-list))
        (with-current-buffer buffer
          (when quillmate-mode
            (setq quillmate--version 0)
            (quillmate-dismiss))))
      (unless (zerop (process-exit-status process))
        (message "quillmate: the language server stopped (exit code %d); see the *quillmate-log* buffer"
                 (process-exit-status process))))))

(defun quillmate--initialization-options ()
  "The initializationOptions from the customizations."
  (append (and quillmate-backend (list :backend quillmate-backend))
          (and quillmate-model (list :model quillmate-model))
          (and quillmate-params (list :params quillmate-params))))

(defun quillmate-update-settings ()
  "Send `quillmate-params' to the running server, so a change applies at once."
  (interactive)
  (quillmate--when-ready
   (lambda ()
     (quillmate--send (list :method "workspace/didChangeConfiguration"
                            :params (list :settings (list :quillmate (list :params (or quillmate-params
                                                                                        (make-hash-table))))))))))

(defun quillmate-start ()
  "Start the language server unless it is running; return non-nil on success."
  (interactive)
  (if (process-live-p quillmate--process)
      t
    (let ((program (car quillmate-command)))
      (if (not (executable-find program))
          (progn (message "quillmate: `%s' was not found on PATH; install quillmate or set `quillmate-command'"
                          program)
                 nil)
        (setq quillmate--ready nil quillmate--pending-input "" quillmate--queue nil)
        (clrhash quillmate--callbacks)
        (setq quillmate--process
              (make-process :name "quillmate"
                            :command quillmate-command
                            :connection-type 'pipe
                            :coding 'binary
                            :noquery t
                            :stderr (get-buffer-create "*quillmate-log*")
                            :filter #'quillmate--filter
                            :sentinel #'quillmate--sentinel))
        (quillmate--request-now
         "initialize"
         (list :processId (emacs-pid)
               :clientInfo (list :name "quillmate.el")
               :rootUri (quillmate--path-uri (expand-file-name default-directory))
               :capabilities (list :workspace (list :applyEdit t))
               :initializationOptions (quillmate--initialization-options))
         (lambda (_result error)
           (if error
               (message "quillmate: the language server failed to start: %s" (plist-get error :message))
             (quillmate--send (list :method "initialized" :params nil))
             (setq quillmate--ready t)
             (let ((queue (reverse quillmate--queue)))
               (setq quillmate--queue nil)
               (mapc #'funcall queue)))))
        t))))

(defun quillmate-stop ()
  "Stop the language server."
  (interactive)
  (when (process-live-p quillmate--process)
    (let ((process quillmate--process) (answered nil))
      (quillmate--request-now "shutdown" nil (lambda (&rest _) (setq answered t)))
      (with-timeout (3 nil)
        (while (and (not answered) (process-live-p process))
          (accept-process-output process 0.05)))
      (when (process-live-p process)
        (quillmate--send (list :method "exit")))
      (with-timeout (2 (delete-process process))
        (while (process-live-p process)
          (accept-process-output process 0.05))))))

(defun quillmate--request-now (method params callback)
  "Send METHOD with PARAMS; CALLBACK gets (result error).  Return the id."
  (let ((id (cl-incf quillmate--next-id)))
    (puthash id callback quillmate--callbacks)
    (quillmate--send (list :id id :method method :params params))
    id))

(defun quillmate--when-ready (function)
  "Call FUNCTION once the server is initialized."
  (when (quillmate-start)
    (if quillmate--ready
        (funcall function)
      (push function quillmate--queue))))

(defun quillmate--request (method params callback)
  "Send METHOD with PARAMS once ready, syncing this buffer first.
CALLBACK gets (result error).  Return a cell whose car becomes the request id."
  (let ((buffer (current-buffer)) (cell (list nil)))
    (quillmate--when-ready
     (lambda ()
       (when (buffer-live-p buffer)
         (with-current-buffer buffer (quillmate--sync)))
       (setcar cell (quillmate--request-now method params callback))))
    cell))

(defun quillmate--cancel-id (id)
  "Ask the server to stop request ID."
  (when (and id (process-live-p quillmate--process))
    (quillmate--send (list :method "$/cancelRequest" :params (list :id id)))))

(defun quillmate--new-stream ()
  "A fresh stream id."
  (format "emacs-%d-%d" (emacs-pid) (cl-incf quillmate--stream-counter)))

;;;; Documents and positions


(defun quillmate--path-uri (path)
  "The file:// URI of PATH."
  (concat "file://"
          (mapconcat (lambda (byte)
                       (if (or (<= ?a byte ?z) (<= ?A byte ?Z) (<= ?0 byte ?9) (memq byte '(?/ ?. ?_ ?~ ?-)))
                           (string byte)
                         (format "%%%02X" byte)))
                     (encode-coding-string path 'utf-8) "")))

(defun quillmate--uri ()
  "The URI of the current buffer."
  (quillmate--path-uri (expand-file-name (or buffer-file-name (concat default-directory (buffer-name))))))

(defun quillmate--utf16-length (string)
  "Length of STRING in UTF-16 code units."
  (+ (length string) (cl-count-if (lambda (c) (> c #xFFFF)) string)))

(defun quillmate--position (&optional point)
  "The LSP position of POINT."
  (save-excursion
    (when point (goto-char point))
    (list :line (1- (line-number-at-pos nil t))
          :character (quillmate--utf16-length (buffer-substring-no-properties (line-beginning-position) (point))))))

(defun quillmate--point (position)
  "The buffer position of the LSP POSITION."
  (save-excursion
    (goto-char (point-min))
    (forward-line (plist-get position :line))
    (let ((units (plist-get position :character)))
      (while (and (> units 0) (not (eolp)))
        (setq units (- units (if (> (char-after) #xFFFF) 2 1)))
        (forward-char 1)))
    (point)))

(defun quillmate--range (beg end)
  "The LSP range from BEG to END."
  (list :start (quillmate--position beg) :end (quillmate--position end)))

(defun quillmate--sync ()
  "Open the current buffer on the server, or send its text if it changed."
  (when (and quillmate--ready (process-live-p quillmate--process))
    (let ((tick (buffer-chars-modified-tick))
          (text (buffer-substring-no-properties (point-min) (point-max))))
      (cond
       ((zerop quillmate--version)
        (setq quillmate--version 1)
        (quillmate--send
         (list :method "textDocument/didOpen"
               :params (list :textDocument (list :uri (quillmate--uri) :languageId "markdown"
                                                 :version 1 :text text)))))
       ((not (eql tick quillmate--synced-tick))
        (cl-incf quillmate--version)
        (quillmate--send
         (list :method "textDocument/didChange"
               :params (list :textDocument (list :uri (quillmate--uri) :version quillmate--version)
                             :contentChanges (vector (list :text text)))))))
      (setq quillmate--synced-tick tick))))

(defun quillmate--did-close ()
  "Tell the server the buffer is gone."
  (when (and quillmate--ready (process-live-p quillmate--process) (> quillmate--version 0))
    (quillmate--send (list :method "textDocument/didClose"
                           :params (list :textDocument (list :uri (quillmate--uri)))))
    (setq quillmate--version 0)))

(defun quillmate--report-accept (text beg)
  "Record TEXT, inserted at BEG, as the model's words in the session."
  (unless (string-empty-p text)
    (quillmate--request
     "workspace/executeCommand"
     (list :command "quillmate.accept"
           :arguments (vector (list :uri (quillmate--uri) :text text :position (quillmate--position beg))))
     (lambda (_result error)
       (when error
         (message "quillmate: could not record the accepted text: %s" (plist-get error :message)))))))

;;;; Ghost text

(cl-defstruct (quillmate--ghost (:constructor quillmate--make-ghost))
  marker items (index 0) stream request (pending t) done cancelled error renders overlay tick)

(defvar-local quillmate--current nil "The ghost text shown in this buffer.")

(defun quillmate--ghost-text (ghost)
  "The alternative GHOST shows."
  (or (nth (quillmate--ghost-index ghost) (quillmate--ghost-items ghost)) ""))

(defun quillmate--render (ghost)
  "Draw GHOST as an overlay at its marker."
  (when-let ((old (quillmate--ghost-overlay ghost)))
    (delete-overlay old))
  (setf (quillmate--ghost-overlay ghost) nil)
  (let ((text (quillmate--ghost-text ghost))
        (count (length (quillmate--ghost-items ghost))))
    (unless (string-empty-p text)
      (let* ((pos (marker-position (quillmate--ghost-marker ghost)))
             (overlay (make-overlay pos pos nil nil t))
             (shown (concat (propertize text 'face 'quillmate-suggestion-face)
                            (if (> count 1)
                                (propertize (format "  (%d/%d)" (1+ (quillmate--ghost-index ghost)) count)
                                            'face 'shadow)
                              ""))))
        ;; Keep the cursor before the ghost text, not after it.
        (put-text-property 0 1 'cursor t shown)
        (overlay-put overlay 'after-string shown)
        (overlay-put overlay 'quillmate t)
        (overlay-put overlay 'priority 1000)
        (setf (quillmate--ghost-overlay ghost) overlay)
        (setf (quillmate--ghost-renders ghost)
              (append (quillmate--ghost-renders ghost) (list (length text))))))))

(defun quillmate-complete (&optional n max-new-tokens index)
  "Ask the model to continue at point; the ghost text grows as it writes.
N alternatives (default 1); MAX-NEW-TOKENS overrides the length; INDEX picks
the alternative shown first."
  (interactive)
  (quillmate-dismiss)
  (let* ((buffer (current-buffer))
         (stream (quillmate--new-stream))
         (ghost (quillmate--make-ghost :marker (copy-marker (point)) :items nil :index (or index 0)
                                       :stream stream :tick (buffer-chars-modified-tick)))
         (extension (append (list :n (or n 1) :streamId stream)
                            (and max-new-tokens (list :maxNewTokens max-new-tokens)))))
    (setq quillmate--current ghost)
    (puthash stream (quillmate--ghost-progress buffer ghost) quillmate--streams)
    (setf (quillmate--ghost-request ghost)
          (quillmate--request
           "textDocument/inlineCompletion"
           (list :textDocument (list :uri (quillmate--uri))
                 :position (quillmate--position)
                 :context (list :triggerKind 1)
                 :quillmate extension)
           (lambda (result error) (quillmate--ghost-finish buffer ghost result error))))
    ghost))

(defun quillmate--ghost-progress (buffer ghost)
  "A handler of `quillmate/progress' that grows GHOST in BUFFER."
  (lambda (params)
    (when (and (buffer-live-p buffer) (eq (buffer-local-value 'quillmate--current buffer) ghost))
      (let* ((i (or (plist-get params :index) 0))
             (items (quillmate--ghost-items ghost)))
        (while (<= (length items) i) (setq items (append items (list ""))))
        (setf (nth i items) (or (plist-get params :text) ""))
        (setf (quillmate--ghost-items ghost) items)
        (when (= i (quillmate--ghost-index ghost))
          (with-current-buffer buffer (quillmate--render ghost)))))))

(defun quillmate--ghost-finish (buffer ghost result error)
  "Finish GHOST in BUFFER with the server's RESULT or ERROR."
  (remhash (quillmate--ghost-stream ghost) quillmate--streams)
  (when (and (buffer-live-p buffer) (eq (buffer-local-value 'quillmate--current buffer) ghost))
    (with-current-buffer buffer
      (setf (quillmate--ghost-pending ghost) nil)
      (if error
          (progn
            (if (eql (plist-get error :code) -32800)
                (setf (quillmate--ghost-cancelled ghost) t)
              (setf (quillmate--ghost-error ghost) (plist-get error :message)))
            (when (string-empty-p (quillmate--ghost-text ghost))
              (quillmate-dismiss)))
        (let ((items (mapcar (lambda (item)
                               (let ((text (plist-get item :insertText)))
                                 (if (stringp text) text (or (plist-get text :value) ""))))
                             (plist-get result :items))))
          (if (or (null items) (equal items '("")))
              (progn (quillmate-dismiss)
                     (message "quillmate: the model had nothing to add here"))
            (setf (quillmate--ghost-items ghost) items
                  (quillmate--ghost-index ghost) (min (quillmate--ghost-index ghost) (1- (length items)))
                  (quillmate--ghost-done ghost) t)
            (quillmate--render ghost)))))))

(defun quillmate-cancel ()
  "Stop the model; what it wrote so far stays as ghost text."
  (interactive)
  (let ((ghost quillmate--current))
    (when (and ghost (quillmate--ghost-pending ghost))
      (quillmate--cancel-id (car (quillmate--ghost-request ghost)))
      t)))

(defun quillmate-dismiss ()
  "Remove the ghost text (stopping the model if it is still writing)."
  (interactive)
  (let ((ghost quillmate--current))
    (when ghost
      (quillmate-cancel)
      (when (quillmate--ghost-overlay ghost)
        (delete-overlay (quillmate--ghost-overlay ghost)))
      (setq quillmate--current nil))))

(defun quillmate--accept-part (take)
  "Insert the part of the ghost text that TAKE returns from it."
  (let* ((ghost quillmate--current)
         (text (and ghost (quillmate--ghost-text ghost))))
    (when (and text (not (string-empty-p text)))
      (when (quillmate--ghost-pending ghost)
        (quillmate-cancel)
        (setf (quillmate--ghost-pending ghost) nil)
        (remhash (quillmate--ghost-stream ghost) quillmate--streams))
      (let* ((part (funcall take text))
             (part (if (string-empty-p part) text part))
             (beg (marker-position (quillmate--ghost-marker ghost)))
             (rest (substring text (length part))))
        (when (quillmate--ghost-overlay ghost)
          (delete-overlay (quillmate--ghost-overlay ghost)))
        (goto-char beg)
        (insert part)
        (quillmate--report-accept part beg)
        (if (string-empty-p rest)
            (quillmate-dismiss)
          (set-marker (quillmate--ghost-marker ghost) (point))
          (setf (quillmate--ghost-items ghost) (list rest)
                (quillmate--ghost-index ghost) 0
                (quillmate--ghost-tick ghost) (buffer-chars-modified-tick))
          (quillmate--render ghost))
        part))))

(defun quillmate-accept ()
  "Insert the whole suggestion."
  (interactive)
  (quillmate--accept-part #'identity))

(defun quillmate-accept-word ()
  "Insert the suggestion's next word (with the space before it)."
  (interactive)
  (quillmate--accept-part
   (lambda (text) (if (string-match "\\`[[:space:]\n]*[^[:space:]\n]+" text) (match-string 0 text) text))))

(defun quillmate-accept-line ()
  "Insert the rest of the suggestion's line (or its next line)."
  (interactive)
  (quillmate--accept-part
   (lambda (text) (if (string-match "\\`\n?[^\n]*" text) (match-string 0 text) text))))

(defun quillmate--cycle (step)
  "Show the alternative STEP away, asking for alternatives when there is one."
  (let ((ghost quillmate--current))
    (when ghost
      (let ((count (length (quillmate--ghost-items ghost))))
        (if (and (< count 2) (not (quillmate--ghost-pending ghost)))
            (save-excursion
              (goto-char (quillmate--ghost-marker ghost))
              (quillmate-complete quillmate-alternatives nil 1))
          (setf (quillmate--ghost-index ghost) (mod (+ (quillmate--ghost-index ghost) step) (max count 1)))
          (quillmate--render ghost))))))

(defun quillmate-next ()
  "Show the next alternative."
  (interactive)
  (quillmate--cycle 1))

(defun quillmate-previous ()
  "Show the previous alternative."
  (interactive)
  (quillmate--cycle -1))

(defun quillmate-suggestion ()
  "The ghost text state, as a plist (for mode lines and tests)."
  (let ((ghost quillmate--current))
    (and ghost
         (list :text (quillmate--ghost-text ghost) :index (quillmate--ghost-index ghost)
               :count (length (quillmate--ghost-items ghost)) :pending (quillmate--ghost-pending ghost)
               :done (quillmate--ghost-done ghost) :cancelled (quillmate--ghost-cancelled ghost)
               :error (quillmate--ghost-error ghost) :renders (quillmate--ghost-renders ghost)))))

(defun quillmate--after-command ()
  "Dismiss the ghost text when the writer types or moves away."
  (let ((ghost quillmate--current))
    (when (and ghost
               (not (memq this-command '(quillmate-complete quillmate-accept quillmate-accept-word
                                         quillmate-accept-line quillmate-next quillmate-previous
                                         quillmate-cancel quillmate-alternatives)))
               (or (/= (point) (quillmate--ghost-marker ghost))
                   (/= (buffer-chars-modified-tick) (quillmate--ghost-tick ghost))))
      (quillmate-dismiss))))

;;;; Rewrites and templates: a preview to accept or reject

(defvar quillmate--preview nil "The rewrite being previewed, as a plist.")

(defvar quillmate-preview-mode-map
  (let ((map (make-sparse-keymap)))
    (define-key map (kbd "a") #'quillmate-preview-accept)
    (define-key map (kbd "C-c C-c") #'quillmate-preview-accept)
    (define-key map (kbd "r") #'quillmate-preview-reject)
    (define-key map (kbd "q") #'quillmate-preview-reject)
    (define-key map (kbd "C-c C-k") #'quillmate-preview-reject)
    map)
  "Keys in the rewrite preview.")

(define-derived-mode quillmate-preview-mode special-mode "quillmate-preview"
  "A proposed rewrite: a accepts it, r rejects it.")

(defun quillmate--refresh-preview ()
  "Redraw the preview buffer."
  (let ((p quillmate--preview))
    (when (and p (buffer-live-p (plist-get p :preview)))
      (require 'diff-mode)
      (with-current-buffer (plist-get p :preview)
        (let ((inhibit-read-only t))
          (erase-buffer)
          (insert (propertize (format "quillmate %s    a: accept   r: reject\n\n" (plist-get p :title))
                              'face 'bold))
          (cond
           ((not (plist-member p :new))
            (insert "The model is writing…\n" (or (plist-get p :streamed) "")))
           ((equal (plist-get p :new) (plist-get p :old))
            (insert "(the model left the passage as it was)\n"))
           (t
            (dolist (line (split-string (plist-get p :old) "\n"))
              (insert (propertize (concat "- " line) 'face 'diff-removed) "\n"))
            (dolist (line (split-string (plist-get p :new) "\n"))
              (insert (propertize (concat "+ " line) 'face 'diff-added) "\n")))))))))

(defun quillmate--close-preview ()
  "Close the preview window and buffer."
  (let ((p quillmate--preview))
    (setq quillmate--preview nil)
    (when (and p (buffer-live-p (plist-get p :preview)))
      (let ((window (get-buffer-window (plist-get p :preview))))
        (when (and window (not (one-window-p window))) (delete-window window)))
      (kill-buffer (plist-get p :preview)))))

(defun quillmate-preview-accept ()
  "Apply the previewed rewrite and record it as the model's words."
  (interactive)
  (let ((p quillmate--preview))
    (cond
     ((or (null p) (not (plist-member p :new)))
      (message "quillmate: there is no finished rewrite to accept") nil)
     ((not (buffer-live-p (plist-get p :buffer)))
      (quillmate--close-preview) nil)
     (t
      (quillmate--close-preview)
      (with-current-buffer (plist-get p :buffer)
        (if (/= (buffer-chars-modified-tick) (plist-get p :tick))
            (progn (message "quillmate: the text changed since the rewrite was asked for; nothing was replaced — ask again")
                   nil)
          (let ((beg (marker-position (plist-get p :beg))))
            (save-excursion
              (delete-region beg (plist-get p :end))
              (goto-char beg)
              (insert (plist-get p :new)))
            (quillmate--report-accept (plist-get p :new) beg)
            t)))))))

(defun quillmate-preview-reject ()
  "Close the preview; the text stays as it was."
  (interactive)
  (let ((p quillmate--preview))
    (when p
      (when (plist-get p :pending)
        (quillmate--cancel-id (car (plist-get p :request))))
      (quillmate--close-preview)
      t)))

(defun quillmate-preview-state ()
  "The preview in progress (for tests): a plist with :new, :pending, :error."
  quillmate--preview)

(defun quillmate--request-edit (method params title beg end on-insert &optional new-text)
  "Send METHOD with PARAMS; preview an edit of BEG..END titled TITLE.
`insert' results go to ON-INSERT instead.  NEW-TEXT, given the result,
returns the text to preview (by default its newText or text)."
  (let* ((stream (quillmate--new-stream))
         (buffer (current-buffer))
         (p (and beg (list :buffer buffer :beg (copy-marker beg) :end (copy-marker end t)
                           :old (buffer-substring-no-properties beg end) :title title :pending t
                           :tick (buffer-chars-modified-tick)))))
    (when p
      (quillmate--close-preview)
      (setq quillmate--preview p)
      (let ((preview (get-buffer-create "*quillmate preview*")))
        (with-current-buffer preview (quillmate-preview-mode))
        (setq p (plist-put p :preview preview))
        (setq quillmate--preview p)
        (quillmate--refresh-preview)
        (display-buffer preview '(display-buffer-below-selected (window-height . 12)))))
    (puthash stream (lambda (params)
                      (when (and p (eq quillmate--preview p))
                        (setq quillmate--preview (plist-put p :streamed (plist-get params :text)))
                        (quillmate--refresh-preview)))
             quillmate--streams)
    (let ((request
           (quillmate--request
            method (append params (list :streamId stream))
            (lambda (result error)
              (remhash stream quillmate--streams)
              (let ((current (and p (eq quillmate--preview p))))
                (when p (plist-put p :pending nil))
                (cond
                 (error
                  (when p (plist-put p :error (plist-get error :message)))
                  (when current (quillmate--close-preview)))
                 ((or (null p) (equal (plist-get result :output) "insert"))
                  (when current (quillmate--close-preview))
                  (when (buffer-live-p buffer)
                    (with-current-buffer buffer
                      (funcall on-insert (or (plist-get result :text) (plist-get result :newText) "")
                               (plist-get result :edit)))))
                 (t
                  (plist-put p :new (if new-text
                                        (funcall new-text result)
                                      (or (plist-get result :newText) (plist-get result :text) "")))
                  (when current (quillmate--refresh-preview)))))))))
      (when p (plist-put p :request request)))))

(defconst quillmate-rewrite-presets
  '("vivid" "shorter" "longer" "simpler" "past-tense" "present-tense" "first-person" "third-person")
  "The rewrites the server knows by name; any other text is a free instruction.")

(defun quillmate-rewrite (beg end instruction)
  "Rewrite BEG..END as INSTRUCTION says, shown as a preview to accept or reject."
  (interactive
   (if (use-region-p)
       (list (region-beginning) (region-end)
             (completing-read "Rewrite (preset or your own words): " quillmate-rewrite-presets))
     (user-error "quillmate: select the passage to rewrite first")))
  (when (string-empty-p (string-trim instruction))
    (user-error "quillmate: say how to rewrite it, e.g. vivid"))
  (quillmate--request-edit "quillmate/rewrite"
                           (list :textDocument (list :uri (quillmate--uri))
                                 :range (quillmate--range beg end) :instruction instruction)
                           (format "rewrite (%s)" instruction) beg end #'ignore))

(defun quillmate--template-names ()
  "The server's template names (waits up to 5 seconds)."
  (let ((names :none))
    (quillmate--request "quillmate/templates" nil
                        (lambda (result _error) (setq names (mapcar (lambda (tm) (plist-get tm :name)) result))))
    (with-timeout (5 nil)
      (while (eq names :none) (accept-process-output quillmate--process 0.05)))
    (if (eq names :none) nil names)))

(defun quillmate--single-insertion (edit)
  "The one insertion EDIT, a WorkspaceEdit, makes here: (POINT . TEXT) or nil."
  (let ((edits (plist-get (plist-get edit :changes) (intern (concat ":" (quillmate--uri))))))
    (when (= (length edits) 1)
      (let* ((range (plist-get (car edits) :range))
             (start (plist-get range :start)))
        (when (equal start (plist-get range :end))
          (cons (quillmate--point start) (plist-get (car edits) :newText)))))))

(defun quillmate-template (name &optional variables beg end)
  "Run the template NAME with VARIABLES (a plist) on BEG..END if given.
Text the template inserts becomes ghost text (after the region, as a new
paragraph, when there is one; else at point); an edit of the region becomes a
preview.  Interactively, variables are read as name=value pairs."
  (interactive
   (let ((name (completing-read "Template: " (quillmate--template-names)))
         (pairs (split-string (read-string "Variables (name=value ...): "))))
     (list name
           (apply #'append
                  (mapcar (lambda (pair)
                            (unless (string-match "\\`\\([[:alnum:]_-]+\\)=\\(.*\\)\\'" pair)
                              (user-error "quillmate: template variables look like name=value, not %s" pair))
                            (list (intern (concat ":" (match-string 1 pair))) (match-string 2 pair)))
                          pairs))
           (and (use-region-p) (region-beginning))
           (and (use-region-p) (region-end)))))
  (let ((point (point-marker)))
    (quillmate--request-edit
     "quillmate/runTemplate"
     (append (list :template name :variables (or variables (make-hash-table))
                   :textDocument (list :uri (quillmate--uri)))
             (and beg (list :range (quillmate--range beg end))))
     (concat "template " name) beg end
     (lambda (text edit)
       (unless (string-empty-p text)
         (quillmate-dismiss)
         (when-let ((insertion (quillmate--single-insertion edit)))
           (setq point (copy-marker (car insertion)) text (cdr insertion)))
         (let ((ghost (quillmate--make-ghost :marker point :items (list text) :pending nil :done t
                                             :tick (buffer-chars-modified-tick))))
           (setq quillmate--current ghost)
           (quillmate--render ghost)))))))

;;;; Word alternatives: the words the model almost wrote

(defun quillmate--request-wait (method params)
  "Send METHOD with PARAMS and wait for the answer: (RESULT . ERROR).
Nil when the server is not running.  \\[keyboard-quit] stops waiting."
  (let ((answer nil))
    (quillmate--request method params (lambda (result error) (setq answer (cons result error))))
    (while (and (null answer) (process-live-p quillmate--process))
      (accept-process-output quillmate--process 0.05))
    answer))

(defun quillmate--words (text)
  "The words of TEXT as (WORD . OFFSET), OFFSET where the word starts."
  (let ((start 0) (words nil))
    (while (string-match "[^[:space:]\n]+" text start)
      (push (cons (match-string 0 text) (match-beginning 0)) words)
      (setq start (match-end 0)))
    (nreverse words)))

(defun quillmate--shown-word (text)
  "TEXT as the menus show it: quoted when it has a space at either end."
  (let ((word (replace-regexp-in-string "\n" "\\n" text t t)))
    (if (equal (string-trim word) word) word (format "\"%s\"" word))))

(defun quillmate--in-order (labels)
  "A completion table of LABELS, an alist, that keeps their order."
  (lambda (string predicate action)
    (if (eq action 'metadata)
        '(metadata (display-sort-function . identity) (cycle-sort-function . identity))
      (complete-with-action action labels string predicate))))

(defun quillmate--choose-alternative (params)
  "Ask for the alternatives at PARAMS and let the writer choose one.
Return (REPLY . CHOICE), or nil when there is none or nothing was chosen."
  (let* ((answer (quillmate--request-wait "quillmate/alternatives" params))
         (reply (car answer))
         (word (plist-get reply :word)))
    (cond
     ;; On an error the server has already shown its one line.
     ((or (null answer) (cdr answer)) nil)
     ((null (plist-get reply :alternatives))
      (message "quillmate: the model weighed no other words here")
      nil)
     (t
      (let* ((labels (mapcar (lambda (option)
                               (let ((text (plist-get option :text)))
                                 (cons (format "%5.1f%%  %s%s" (* 100.0 (or (plist-get option :probability) 0))
                                               (quillmate--shown-word text)
                                               (if (equal text word) "  (written)" ""))
                                       text)))
                             (plist-get reply :alternatives)))
             (picked (completing-read (format "quillmate: instead of %s: " (quillmate--shown-word word))
                                      (quillmate--in-order labels) nil t)))
        (when-let ((cell (assoc picked labels)))
          (cons reply (cdr cell))))))))

(defun quillmate-alternatives (&optional word)
  "Show the words the model almost wrote at a word; write again from one.
The words the model weighed there come with their probabilities, the one
it wrote marked (written).  Choose one and the model writes again from
it, keeping the words before.  With ghost text shown, the word is one of
the suggestion's: the WORD-th (the prefix argument) or one you choose,
and the new suggestion streams in as ghost text.  Without, it is the
word at point in model text accepted in this buffer, and the new words
are previewed, replacing the old ones from that word on."
  (interactive "P")
  (let* ((ghost quillmate--current)
         (text (and ghost (quillmate--ghost-text ghost)))
         (number (and word (prefix-numeric-value word))))
    (cond
     ((or (null text) (string-empty-p text))
      (if number
          (message "quillmate: no suggestion is shown to take word %d from; without a number, the word at point is used"
                   number)
        (quillmate--accepted-alternatives)))
     ((quillmate--ghost-pending ghost)
      (message "quillmate: the model is still writing this suggestion; ask again once it has finished"))
     (t
      (let* ((words (quillmate--words text))
             (labels (cl-loop for w in words for i from 1 collect (cons (format "%s  (%d)" (car w) i) w)))
             (chosen (cond
                      ((null number)
                       (cdr (assoc (completing-read "quillmate: which word? " (quillmate--in-order labels) nil t)
                                   labels)))
                      ((<= 1 number (length words)) (nth (1- number) words))
                      (t (message "quillmate: the suggestion has %d words; there is no word %d"
                                  (length words) number)
                         nil))))
        (when chosen
          (quillmate--ghost-alternatives ghost text (cdr chosen))))))))

(defun quillmate--ghost-alternatives (ghost text offset)
  "Offer the alternatives at OFFSET of TEXT, shown by GHOST; write again."
  (let* ((params (list :textDocument (list :uri (quillmate--uri))
                       :position (quillmate--position (quillmate--ghost-marker ghost))
                       :text text :offset offset))
         (picked (quillmate--choose-alternative params)))
    (cond
     ((null picked) nil)
     ((not (eq quillmate--current ghost))
      (message "quillmate: the suggestion changed while you chose; ask again"))
     (t
      (let* ((reply (car picked))
             (lead (concat (substring text 0 (plist-get reply :start)) (cdr picked)))
             (buffer (current-buffer))
             (stream (quillmate--new-stream))
             (new (quillmate--make-ghost :marker (copy-marker (quillmate--ghost-marker ghost)) :items (list lead)
                                         :stream stream :tick (buffer-chars-modified-tick))))
        (quillmate-dismiss)
        (setq quillmate--current new)
        (quillmate--render new)
        (puthash stream (quillmate--ghost-progress buffer new) quillmate--streams)
        (setf (quillmate--ghost-request new)
              (quillmate--request
               "quillmate/regenerateFrom" (append params (list :choice (cdr picked) :streamId stream))
               (lambda (result error)
                 ;; One new suggestion: finish it as an inline completion's.
                 (quillmate--ghost-finish
                  buffer new (list :items (list (list :insertText (or (plist-get result :text) lead)))) error))))
        new)))))

(defun quillmate--accepted-alternatives ()
  "Offer the alternatives at point in accepted model text; preview the rest."
  (let* ((params (list :textDocument (list :uri (quillmate--uri)) :position (quillmate--position)))
         (picked (quillmate--choose-alternative params)))
    (when picked
      (let* ((reply (car picked))
             (beg (quillmate--point (plist-get (plist-get reply :range) :start)))
             (old (substring (plist-get reply :text) (plist-get reply :start))))
        (quillmate--request-edit
         "quillmate/regenerateFrom" (append params (list :choice (cdr picked)))
         (format "words from %s with %s" (quillmate--shown-word (plist-get reply :word))
                 (quillmate--shown-word (cdr picked)))
         beg (min (point-max) (+ beg (length old))) #'ignore
         (lambda (result) (substring (plist-get result :text) (plist-get result :start))))))))

;;;; Information

(defun quillmate-provenance-fetch (callback)
  "Call CALLBACK with the session's provenance, or nil on failure.
The provenance is a plist (:sessionId ID :spans SPANS)."
  (quillmate--request "quillmate/provenance" (list :textDocument (list :uri (quillmate--uri)))
                      (lambda (result error) (funcall callback (and (not error) result)))))

(defun quillmate-provenance ()
  "Show who wrote what in this file's session."
  (interactive)
  (quillmate-provenance-fetch
   (lambda (result)
     (when result
       (with-current-buffer (get-buffer-create "*quillmate provenance*")
         (let ((inhibit-read-only t))
           (erase-buffer)
           (insert (format "quillmate provenance — session %s\n\n"
                           (or (plist-get result :sessionId) "none (not kept: no file)")))
           (dolist (span (plist-get result :spans))
             (let ((model (equal (plist-get span :author) "model")))
               (insert (propertize (if model "[model ] " "[writer] ") 'face 'bold)
                       (propertize (plist-get span :text) 'face (if model 'quillmate-suggestion-face 'default))
                       "\n"))))
         (special-mode)
         (display-buffer (current-buffer)))))))

(defun quillmate-info-fetch (callback)
  "Call CALLBACK with the server's context info, or nil on failure.
The info is a plist (:backend :model :contextWindow :sessionId :loading)."
  (quillmate--request "quillmate/contextInfo" (list :textDocument (list :uri (quillmate--uri)))
                      (lambda (result error) (funcall callback (and (not error) result)))))

(defun quillmate-info ()
  "Show the backend, model, context window and session."
  (interactive)
  (quillmate-info-fetch
   (lambda (r)
     (when r
       (message "quillmate: backend %s · model %s · context %s · session %s"
                (plist-get r :backend) (plist-get r :model)
                (if (plist-get r :loading) "loading" (format "%s tokens" (plist-get r :contextWindow)))
                (or (plist-get r :sessionId) "none"))))))

(defun quillmate-switch-backend (profile &optional model)
  "Write with the backend PROFILE (and MODEL) from now on.
The server says how it went; if the new backend fails, the old one stays."
  (interactive (list (read-string "Backend profile: ")
                     (let ((m (read-string "Model (empty: the profile's): "))) (and (not (string-empty-p m)) m))))
  (quillmate--request "workspace/executeCommand"
                      (list :command "quillmate.switchBackend"
                            :arguments (if model (vector profile model) (vector profile)))
                      #'ignore))

(defun quillmate--apply-workspace-edit (edit)
  "Apply EDIT, a WorkspaceEdit from a code action, to open buffers.
Return non-nil if every change found its buffer."
  (let ((changes nil))
    (let ((plain (plist-get edit :changes)))
      (while plain
        (push (cons (substring (symbol-name (car plain)) 1) (cadr plain)) changes)
        (setq plain (cddr plain))))
    (dolist (dc (plist-get edit :documentChanges))
      (push (cons (plist-get (plist-get dc :textDocument) :uri) (plist-get dc :edits)) changes))
    (cl-every
     (lambda (change)
       (let ((buffer (cl-find-if (lambda (b) (with-current-buffer b
                                               (and quillmate-mode (equal (quillmate--uri) (car change)))))
                                 (buffer-list))))
         (when buffer
           (with-current-buffer buffer
             (let ((edits (mapcar (lambda (e)
                                    (let ((range (plist-get e :range)))
                                      (list (copy-marker (quillmate--point (plist-get range :start)))
                                            (copy-marker (quillmate--point (plist-get range :end)) t)
                                            (plist-get e :newText))))
                                  (cdr change))))
               (save-excursion
                 (dolist (e edits)
                   (delete-region (nth 0 e) (nth 1 e))
                   (goto-char (nth 0 e))
                   (insert (nth 2 e))))
               t)))))
     changes)))

;;;; The mode

(defvar quillmate-mode-map
  (let ((map (make-sparse-keymap))
        (prefix (make-sparse-keymap)))
    (define-key prefix (kbd "c") #'quillmate-complete)
    (define-key prefix (kbd "a") #'quillmate-accept)
    (define-key prefix (kbd "w") #'quillmate-accept-word)
    (define-key prefix (kbd "l") #'quillmate-accept-line)
    (define-key prefix (kbd "n") #'quillmate-next)
    (define-key prefix (kbd "p") #'quillmate-previous)
    (define-key prefix (kbd "o") #'quillmate-alternatives)
    (define-key prefix (kbd "d") #'quillmate-dismiss)
    (define-key prefix (kbd "k") #'quillmate-cancel)
    (define-key prefix (kbd "r") #'quillmate-rewrite)
    (define-key prefix (kbd "t") #'quillmate-template)
    (define-key prefix (kbd "b") #'quillmate-switch-backend)
    (define-key prefix (kbd "v") #'quillmate-provenance)
    (define-key prefix (kbd "i") #'quillmate-info)
    (define-key map (kbd "C-c q") prefix)
    (define-key map (kbd "M-<right>") #'quillmate-accept-word)
    (define-key map (kbd "M-<down>") #'quillmate-accept-line)
    map)
  "Keys of `quillmate-mode'; C-c q is the prefix.")

;;;###autoload
(define-minor-mode quillmate-mode
  "Write with quillmate: ghost-text continuations, rewrites and provenance.

\\{quillmate-mode-map}"
  :lighter " qm"
  :keymap quillmate-mode-map
  (if quillmate-mode
      (progn
        (setq quillmate--version 0 quillmate--synced-tick nil)
        (add-hook 'post-command-hook #'quillmate--after-command nil t)
        (add-hook 'after-save-hook #'quillmate--sync nil t)
        (add-hook 'kill-buffer-hook #'quillmate--did-close nil t)
        (let ((buffer (current-buffer)))
          (quillmate--when-ready (lambda () (when (buffer-live-p buffer)
                                              (with-current-buffer buffer (quillmate--sync)))))))
    (quillmate-dismiss)
    (remove-hook 'post-command-hook #'quillmate--after-command t)
    (remove-hook 'after-save-hook #'quillmate--sync t)
    (remove-hook 'kill-buffer-hook #'quillmate--did-close t)
    (quillmate--did-close)))

;;;###autoload
(defun quillmate-eglot-setup ()
  "Let eglot use quillmate for Markdown and text buffers.
That gives eglot quillmate's code actions.
Ghost text and previews come from `quillmate-mode', which needs no eglot."
  (interactive)
  (require 'eglot)
  (add-to-list 'eglot-server-programs `((markdown-mode text-mode) . ,quillmate-command)))

(provide 'quillmate)
;;; quillmate.el ends here
