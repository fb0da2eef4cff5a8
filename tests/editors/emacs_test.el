;;; emacs_test.el --- Drives editors/emacs/quillmate.el against the real server  -*- lexical-binding: t; -*-

;; Run by tests/editors/test_emacs.py: emacs --batch -Q -l quillmate.el -l this
;; -f ert-run-tests-batch-and-exit, with QM_CMD, QM_FILE and QM_RESULT set.
;; Each test writes nothing itself; ERT's exit code and output are the result,
;; and the timings go to QM_RESULT.

(require 'ert)
(require 'quillmate)

(setq quillmate-command (append (json-parse-string (getenv "QM_CMD") :array-type 'list) nil)
      quillmate-params '(:max_new_tokens 12 :temperature 0 :seed 7))

(defvar qm-test-timings nil)

(defun qm-test-wait (what predicate &optional seconds)
  "Poll PREDICATE (processing server output) for up to SECONDS; fail naming WHAT."
  (let ((deadline (+ (float-time) (or seconds 60))))
    (while (not (funcall predicate))
      (when (> (float-time) deadline)
        (ert-fail (format "timed out waiting for %s" what)))
      (accept-process-output quillmate--process 0.02))))

(defmacro qm-test-with-file (&rest body)
  "Run BODY in a `quillmate-mode' buffer visiting QM_FILE, restored afterwards."
  (declare (indent 0))
  `(let ((buffer (find-file-noselect (getenv "QM_FILE"))))
     (unwind-protect
         (with-current-buffer buffer
           (quillmate-mode 1)
           (qm-test-wait "the server to start" (lambda () (and quillmate--ready (> quillmate--version 0))))
           (goto-char (point-max))
           (skip-chars-backward "\n")
           ,@body)
       (with-current-buffer buffer
         (quillmate-dismiss)
         (set-buffer-modified-p nil))
       (kill-buffer buffer))))

(defun qm-test-suggest (&rest args)
  "Ask for a continuation and wait for it to finish; return its state."
  (apply #'quillmate-complete args)
  (qm-test-wait "the suggestion"
                (lambda () (let ((s (quillmate-suggestion))) (or (null s) (plist-get s :done) (plist-get s :error)))))
  (quillmate-suggestion))

(ert-deftest quillmate-ghost-text-accept-and-provenance ()
  (let ((start (float-time)))
    (qm-test-with-file
      (let* ((original (buffer-string))
             (at (point))
             (s (qm-test-suggest))
             (suggestion (plist-get s :text))
             (renders (plist-get s :renders)))
        (should (null (plist-get s :error)))
        (should (string-match-p "[^[:space:]]" suggestion))
        ;; The ghost text grew while the model wrote.
        (should (>= (length renders) 2))
        (should (> (car (last renders)) (car renders)))
        (should (equal renders (sort (copy-sequence renders) #'<=)))
        ;; It is an overlay at point showing the suggestion, not buffer text.
        (let ((overlays (cl-remove-if-not (lambda (o) (overlay-get o 'quillmate)) (overlays-in (point-min) (point-max)))))
          (should (= (length overlays) 1))
          (should (= (overlay-start (car overlays)) at))
          (should (equal (substring-no-properties (overlay-get (car overlays) 'after-string)) suggestion)))
        (should (equal (buffer-string) original))
        ;; One word, then the rest.
        (let ((word (progn (string-match "\\`[[:space:]\n]*[^[:space:]\n]+" suggestion) (match-string 0 suggestion))))
          (quillmate-accept-word)
          (should (equal (buffer-string) (concat (substring original 0 (1- at)) word (substring original (1- at)))))
          (should (equal (plist-get (quillmate-suggestion) :text) (substring suggestion (length word))))
          (quillmate-accept)
          (should (equal (buffer-string) (concat (substring original 0 (1- at)) suggestion (substring original (1- at)))))
          (should (null (quillmate-suggestion)))
          (should (= (point) (+ at (length suggestion)))))
        ;; The session credits the model.
        (let ((prov :none))
          (quillmate-provenance-fetch (lambda (r) (setq prov r)))
          (qm-test-wait "provenance" (lambda () (not (eq prov :none))))
          (should prov)
          (let ((by-model (mapconcat (lambda (span) (plist-get span :text))
                                     (cl-remove-if-not (lambda (span) (equal (plist-get span :author) "model"))
                                                       (plist-get prov :spans))
                                     "")))
            (should (string-search (string-trim suggestion) by-model))))))
    (push (cons "ghost" (- (float-time) start)) qm-test-timings)))

(defun qm-test-last-message ()
  "The last line in *Messages*."
  (with-current-buffer (messages-buffer)
    (save-excursion
      (goto-char (point-max))
      (skip-chars-backward "\n")
      (buffer-substring-no-properties (line-beginning-position) (point)))))

(defun qm-test-model-text (prov)
  "The text PROV credits to the model."
  (mapconcat (lambda (span) (plist-get span :text))
             (cl-remove-if-not (lambda (span) (equal (plist-get span :author) "model")) (plist-get prov :spans))
             ""))

(defun qm-test-provenance ()
  "The session's provenance, fetched and waited for."
  (let ((prov :none))
    (quillmate-provenance-fetch (lambda (r) (setq prov r)))
    (qm-test-wait "provenance" (lambda () (not (eq prov :none))))
    (should prov)
    prov))

(defun qm-test-ghost-overlays ()
  (cl-remove-if-not (lambda (o) (overlay-get o 'quillmate)) (overlays-in (point-min) (point-max))))

(ert-deftest quillmate-alternatives-template-info-backend ()
  (let ((start (float-time)))
    (qm-test-with-file
      ;; Alternatives: from one suggestion, next asks for two and shows the second;
      ;; previous and next cycle through them, wrapping. Sampled (seeded), so they differ.
      (let ((quillmate-alternatives 2)
            (quillmate-params '(:max_new_tokens 12 :temperature 0.9 :seed 7))
            (original (buffer-string))
            (at (point))
            (texts (list nil nil)))
        (quillmate-update-settings)
        (should (= (plist-get (qm-test-suggest) :count) 1))
        (quillmate-next)
        (qm-test-wait "the alternatives"
                      (lambda () (let ((s (quillmate-suggestion))) (or (plist-get s :done) (plist-get s :error)))))
        (should (null (plist-get (quillmate-suggestion) :error)))
        (should (equal (list (plist-get (quillmate-suggestion) :count) (plist-get (quillmate-suggestion) :index)) '(2 1)))
        (dolist (step (list #'quillmate-previous #'quillmate-previous #'quillmate-next))
          (let ((before (plist-get (quillmate-suggestion) :index)))
            (funcall step)
            (let* ((s (quillmate-suggestion))
                   (overlays (qm-test-ghost-overlays)))
              ;; With two, either way is the other one.
              (should (= (plist-get s :index) (- 1 before)))
              (should (= (length overlays) 1))
              (should (equal (substring-no-properties (overlay-get (car overlays) 'after-string))
                             (format "%s  (%d/2)" (plist-get s :text) (1+ (plist-get s :index)))))
              (setf (nth (plist-get s :index) texts) (plist-get s :text)))))
        (should-not (equal (nth 0 texts) (nth 1 texts)))
        (quillmate-accept)
        (should (equal (buffer-string) (concat (substring original 0 (1- at)) (nth 0 texts) (substring original (1- at))))))
      (quillmate-update-settings)
      ;; A template on a selection: the poem comes as ghost text after it, as a new
      ;; paragraph; accepting line by line inserts it.
      (let* ((original (buffer-string))
             (beg (progn (goto-char (point-min)) (forward-line 2) (point)))
             (end (line-end-position))
             (inserted ""))
        (goto-char (point-max))
        (quillmate-template "poem" nil beg end)
        (qm-test-wait "the poem" (lambda () (or (plist-get (quillmate-suggestion) :done)
                                                (plist-get (quillmate-preview-state) :error))))
        (should (null (get-buffer "*quillmate preview*")))
        (let ((poem (plist-get (quillmate-suggestion) :text)))
          (should (string-prefix-p "\n\n" poem))
          (should (string-match-p "[^[:space:]]" poem)))
        (should (= (overlay-start (car (qm-test-ghost-overlays))) end))
        (dotimes (_ 2)
          (let* ((rest (plist-get (quillmate-suggestion) :text))
                 (line (progn (string-match "\\`\n?[^\n]*" rest) (match-string 0 rest))))
            (should (equal (quillmate-accept-line) line))
            (setq inserted (concat inserted line))
            (should (or (null (quillmate-suggestion))
                        (equal (plist-get (quillmate-suggestion) :text) (substring rest (length line)))))))
        (should (string-match-p "[^[:space:]]" inserted))
        (should (equal (buffer-string) (concat (substring original 0 (1- end)) inserted (substring original (1- end)))))
        (quillmate-dismiss)
        (should (string-search (string-trim inserted) (qm-test-model-text (qm-test-provenance)))))
      ;; Info and the provenance buffer.
      (quillmate-info)
      (qm-test-wait "the info message" (lambda () (string-prefix-p "quillmate: backend " (qm-test-last-message))))
      (should (string-match-p "\\`quillmate: backend local · model .* · context [0-9]+ tokens · session [0-9a-f]+\\'"
                              (qm-test-last-message)))
      (quillmate-provenance)
      (qm-test-wait "the provenance buffer" (lambda () (get-buffer "*quillmate provenance*")))
      (with-current-buffer "*quillmate provenance*"
        (should (string-match-p "\\`quillmate provenance — session [0-9a-f]+\n" (buffer-string)))
        (should (string-search "[writer] # The lighthouse" (buffer-string)))
        (should (string-search "[model ] " (buffer-string))))
      (kill-buffer "*quillmate provenance*")
      ;; Switching backend: a profile works; an unknown one is one line and keeps the old one.
      (quillmate-switch-backend "local")
      (qm-test-wait "the switch to local" (lambda () (string-match-p "now writing with local" (qm-test-last-message))))
      (should (string-prefix-p "quillmate: now writing with local" (qm-test-last-message)))
      (quillmate-switch-backend "no-such-profile")
      (qm-test-wait "the failed switch" (lambda () (string-match-p "no-such-profile" (qm-test-last-message))))
      (should (string-match-p "\\`quillmate: Unknown backend 'no-such-profile'\\.[^\n]*\\'" (qm-test-last-message)))
      (let ((info :none))
        (quillmate-info-fetch (lambda (r) (setq info r)))
        (qm-test-wait "the info" (lambda () (not (eq info :none))))
        (should (equal (plist-get info :backend) "local"))
        (should-not (plist-get info :loading))))
    (push (cons "alternatives-template-info-backend" (- (float-time) start)) qm-test-timings)))

(ert-deftest quillmate-rewrite-reject-and-accept ()
  (let ((start (float-time)))
    (qm-test-with-file
      (let* ((original (buffer-string))
             (beg (progn (goto-char (point-min)) (forward-line 2) (point)))
             (end (line-end-position)))
        (quillmate-rewrite beg end "shorter")
        (qm-test-wait "the rewrite" (lambda () (let ((p (quillmate-preview-state)))
                                                 (or (plist-member p :new) (plist-get p :error)))))
        (should (null (plist-get (quillmate-preview-state) :error)))
        (should (get-buffer "*quillmate preview*"))
        (should (quillmate-preview-reject))
        (should (equal (buffer-string) original))
        (should (null (quillmate-preview-state)))
        (should (null (get-buffer "*quillmate preview*")))
        (quillmate-rewrite beg end "vivid")
        (qm-test-wait "the rewrite" (lambda () (plist-member (quillmate-preview-state) :new)))
        (let ((new (plist-get (quillmate-preview-state) :new)))
          (should (quillmate-preview-accept))
          (should (equal (buffer-string)
                         (concat (substring original 0 (1- beg)) new (substring original (1- end))))))))
    (push (cons "rewrite" (- (float-time) start)) qm-test-timings)))

(ert-deftest quillmate-cancel-stops-the-model ()
  (let ((start (float-time)))
    (qm-test-with-file
      (let ((original (buffer-string)))
        (quillmate-complete 1 400)
        (qm-test-wait "streaming to begin"
                      (lambda () (let ((s (quillmate-suggestion)))
                                   (or (plist-get s :renders) (not (plist-get s :pending))))))
        (should (plist-get (quillmate-suggestion) :pending))
        (let ((t0 (float-time)))
          (should (quillmate-cancel))
          (qm-test-wait "the cancelled request to end" (lambda () (not (plist-get (quillmate-suggestion) :pending))) 10)
          (push (cons "cancel-ms" (* 1000 (- (float-time) t0))) qm-test-timings))
        (should (plist-get (quillmate-suggestion) :cancelled))
        (should (null (plist-get (quillmate-suggestion) :error)))
        (should (equal (buffer-string) original))
        (quillmate-dismiss)
        (should (null (quillmate-suggestion)))))
    (push (cons "cancel" (- (float-time) start)) qm-test-timings)))

(add-hook 'kill-emacs-hook
          (lambda ()
            (quillmate-stop)
            (with-temp-file (getenv "QM_RESULT")
              (insert (json-serialize (let ((h (make-hash-table :test #'equal)))
                                        (dolist (cell qm-test-timings) (puthash (car cell) (cdr cell) h))
                                        h))))))
;;; emacs_test.el ends here
